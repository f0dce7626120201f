import { Timestamp } from '@google-cloud/firestore';
import { z } from 'zod';

/**
 * The TradeYa shapes before and after v2 (DESIGN.md "Domain example"). Objects are loose: the app
 * keeps fields of its own on these documents, and a migration must neither reject nor drop them.
 * v2 is an EXPAND step, so every v2 shape still carries the legacy fields old clients read.
 */

export const SKILL_LEVELS = ['beginner', 'intermediate', 'advanced', 'expert'] as const;
export type SkillLevel = (typeof SKILL_LEVELS)[number];

export const TRADE_STATUSES = ['open', 'active', 'in_progress', 'completed', 'cancelled'] as const;
export type TradeStatus = (typeof TRADE_STATUSES)[number];

/** The marker value of every v2 document (`schemaVersion`). */
export const SCHEMA_VERSION_V2 = '2.0';

const timestamp = z.instanceof(Timestamp, { message: 'expected a Firestore Timestamp' });
const nonBlank = z.string().regex(/\S/, 'must not be blank');
const skillLevel = z.enum(SKILL_LEVELS);
const tradeStatus = z.enum(TRADE_STATUSES);

/**
 * Legacy levels were typed by hand ("Expert", " advanced"): accepted case- and space-insensitively.
 * A refinement rather than a transform: its issue keeps the union of skill shapes from hiding
 * which field is wrong (`offeredSkills[0].level`, not just `offeredSkills[0]`).
 */
const legacySkillLevel = z
  .string()
  .refine((level) => (SKILL_LEVELS as readonly string[]).includes(level.trim().toLowerCase()), {
    message: `expected one of ${SKILL_LEVELS.join(', ')} (any case)`,
  });

export const legacySkillObjectSchema = z.looseObject({
  id: nonBlank.optional(),
  name: nonBlank,
  level: legacySkillLevel.nullish(),
  category: z.string().nullish(),
});
/** A legacy skill: a bare name, or an object whose id and level may be missing. */
export const legacySkillSchema = z.union([nonBlank, legacySkillObjectSchema]);

export const tradeSkillSchema = z.object({
  id: nonBlank,
  name: nonBlank,
  level: skillLevel,
  category: z.string().optional(),
});
export type TradeSkill = z.infer<typeof tradeSkillSchema>;

const legacyTradeShape = {
  title: z.string(),
  status: tradeStatus,
  creatorId: nonBlank,
  /** Absent or null while nobody has joined the trade. */
  participantId: nonBlank.nullish(),
  offeredSkills: z.array(legacySkillSchema),
  requestedSkills: z.array(legacySkillSchema),
  createdAt: timestamp,
  updatedAt: timestamp.optional(),
};

export const legacyTradeSchema = z.looseObject(legacyTradeShape);
/** A legacy trade as stored (skill levels as typed, not yet lower-cased). */
export type LegacyTrade = z.input<typeof legacyTradeSchema>;

export const tradeV2Schema = z.looseObject({
  ...legacyTradeShape,
  skillsOffered: z.array(tradeSkillSchema),
  skillsWanted: z.array(tradeSkillSchema),
  participants: z.object({ creator: nonBlank, participant: nonBlank.nullable() }),
  schemaVersion: z.literal(SCHEMA_VERSION_V2),
});
export type TradeV2 = z.infer<typeof tradeV2Schema>;

/**
 * A conversation participant as different app versions wrote it: `{id, name, avatar}` or
 * `{userId, displayName, photoURL}` (or a mix). Only the user id is required.
 */
export const legacyConversationParticipantSchema = z
  .looseObject({
    id: nonBlank.optional(),
    userId: nonBlank.optional(),
    name: z.string().nullish(),
    displayName: z.string().nullish(),
    avatar: z.string().nullish(),
    photoURL: z.string().nullish(),
  })
  .refine((p) => p.id !== undefined || p.userId !== undefined, {
    message: 'a participant needs an id or a userId',
    path: ['id'],
  });
export type LegacyConversationParticipant = z.input<typeof legacyConversationParticipantSchema>;

const legacyConversationShape = {
  participants: z.array(legacyConversationParticipantSchema).min(1),
  createdAt: timestamp,
  updatedAt: timestamp.optional(),
};

export const legacyConversationSchema = z.looseObject(legacyConversationShape);
export type LegacyConversation = z.input<typeof legacyConversationSchema>;

export const conversationV2Schema = z.looseObject({
  ...legacyConversationShape,
  participantIds: z.array(nonBlank).min(1),
  schemaVersion: z.literal(SCHEMA_VERSION_V2),
});
export type ConversationV2 = z.infer<typeof conversationV2Schema>;
