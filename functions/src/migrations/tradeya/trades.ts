import { FieldValue } from '@google-cloud/firestore';
import { defineMigration } from '../../definitions/define';
import type { DocData } from '../../definitions/types';
import { activeTrades, activeUsers, recentOpenTrades, userTrades } from './app-queries';
import { SCHEMA_VERSION_V2, legacyTradeSchema, tradeV2Schema, type LegacyTrade, type SkillLevel, type TradeSkill } from './schemas';

type LegacySkill = LegacyTrade['offeredSkills'][number];

/**
 * The fields v2 adds to a valid legacy trade (the engine adds the version marker).
 * A bare skill string `s` becomes `{id: s, name: s, level: 'intermediate'}`; a skill object keeps its
 * id (or gets the slug of its name: `'Web Design & UX'` → `'web-design-ux'`), its level lower-cased
 * (or `'intermediate'`) and its category when it has one — its other keys stay in the legacy array.
 * Self-contained on purpose: its source text is part of the migration checksum, which does not
 * see the helpers a transform calls.
 */
function upgradeTrade(doc: DocData): DocData {
  function slugify(name: string): string {
    const slug = name
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]+/gu, '-')
      .replace(/^-+|-+$/g, '');
    return slug === '' ? name : slug;
  }
  function toTradeSkill(skill: LegacySkill): TradeSkill {
    if (typeof skill === 'string') return { id: skill, name: skill, level: 'intermediate' };
    // `from` accepted the level, so its lower-cased form is a SkillLevel.
    const level = skill.level ? (skill.level.trim().toLowerCase() as SkillLevel) : 'intermediate';
    const normalised: TradeSkill = { id: skill.id ?? slugify(skill.name), name: skill.name, level };
    if (typeof skill.category === 'string') normalised.category = skill.category;
    return normalised;
  }
  // `from` has accepted the document before `up` runs: the cast names what was checked.
  const trade = doc as LegacyTrade;
  return {
    skillsOffered: trade.offeredSkills.map(toTradeSkill),
    skillsWanted: trade.requestedSkills.map(toTradeSkill),
    participants: { creator: trade.creatorId, participant: trade.participantId ?? null },
  };
}

export const tradesV2 = defineMigration({
  id: 'tradeya-trades-v2',
  version: '2.0',
  description:
    'TradeYa trades v2 (expand): skills become {id, name, level, category?} objects in skillsOffered/skillsWanted, ' +
    'creatorId/participantId become participants {creator, participant}; the legacy fields stay for old clients.',
  target: { collection: 'trades' },
  marker: { field: 'schemaVersion', from: null, to: SCHEMA_VERSION_V2 },
  from: legacyTradeSchema,
  to: tradeV2Schema,
  up: upgradeTrade,
  down: () => ({
    skillsOffered: FieldValue.delete(),
    skillsWanted: FieldValue.delete(),
    participants: FieldValue.delete(),
  }),
  references: [
    { field: 'participants.creator', collection: 'users' },
    { field: 'participants.participant', collection: 'users', optional: true },
  ],
  impactQueries: [activeTrades, activeUsers],
  probes: [recentOpenTrades, userTrades],
  legacyFields: ['offeredSkills', 'requestedSkills', 'creatorId', 'participantId'],
});
