import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { DocData } from '../definitions/types';
import { tradesV2 } from '../migrations/tradeya/trades';
import { conversationsV2 } from '../migrations/tradeya/conversations';
import { SCHEMA_VERSION_V2, SKILL_LEVELS, type TradeStatus } from '../migrations/tradeya/schemas';

/*
 * Deterministic TradeYa demo data: the same seed (and `now`) gives the same documents and ids.
 * Every document is computed from (seed, collection, index) alone, so generation is lazy, random
 * access and memory-bound. Ids are a bijective hash of the index (8 hex digits): unique, spread
 * over the key space like Firestore's own ids.
 *
 * Cases, per block of 100 consecutive documents. The kinds are exact in every full block. A block
 * starts with a head (20 trades, 10 conversations) holding one of every case, so every case
 * appears from docs = 20 on.
 *
 *  trades            5 already at v2 (legacy fields + v2 fields + schemaVersion '2.0')
 *                    1 malformed: creatorId missing
 *                    1 malformed: offeredSkills not an array (a string or a map)
 *                   93 legacy, of which 1 names a creator and 1 a participant with no user document
 *    drawn per trade (the head forces one of each on top, so the counts run slightly above these rates):
 *                    skills: strings 30 %, objects 40 %, mixed 30 %
 *                    participantId: present 80 %, null 10 %, absent 10 %
 *                    status: open 85 % / cancelled 15 % while nobody joined; otherwise open 10,
 *                    active 30, in_progress 25, completed 25, cancelled 10 %
 *  conversations     ⌈docs/2⌉; 5 already at v2, 1 malformed (a participant without id or userId),
 *                   94 legacy, of which 1 names a participant with no user document
 *    drawn per conversation: participant keys {id, name, avatar} 40 %, {userId, displayName,
 *                    photoURL} 40 %, one of each 20 %; 5 % list one user twice (in both key styles)
 *  users             max(10, ⌈docs/4⌉); every 5th was active 0–5 minutes before `now` (so an
 *                    "active in the last 15 minutes" query still finds them for 10 minutes), the
 *                    others 1 hour to 30 days before.
 */

export interface DemoSeedOptions {
  /** Number of trades; conversations are ⌈docs/2⌉, users max(10, ⌈docs/4⌉). */
  docs: number;
  /** Any integer in [0, 2^32). */
  seed: number;
  /** Anchors every timestamp (default: the current time). Same seed and `now` → identical data. */
  now?: Date;
}

export type SkillShape = 'strings' | 'objects' | 'mixed';
export type ParticipantState = 'present' | 'null' | 'absent';

export interface TradeCase {
  kind: 'legacy' | 'alreadyV2' | 'missingCreator' | 'skillsNotArray';
  /** Shape of the legacy skill arrays (`offeredSkills` is not an array when kind is skillsNotArray). */
  skills: SkillShape;
  participant: ParticipantState;
  /** Which reference names a user that does not exist. */
  orphan: 'none' | 'creator' | 'participant';
}

export type ParticipantKeys = 'idName' | 'userIdDisplayName' | 'mixed';

export interface ConversationCase {
  kind: 'legacy' | 'alreadyV2' | 'participantWithoutId';
  keys: ParticipantKeys;
  duplicateParticipant: boolean;
  orphanParticipant: boolean;
}

export interface UserCase {
  /** lastActiveAt is 0–5 minutes before `now`. */
  recentlyActive: boolean;
}

export interface GeneratedDoc<Case> {
  id: string;
  data: DocData;
  case: Case;
}

/**
 * What a seeding wrote, by case: the figures a plan of the TradeYa migrations must report.
 * The sub-counts of `trades` (skills, participant, orphans) and of `conversations` (keys,
 * duplicateParticipant, orphans) cover the legacy documents only — the ones a migration changes.
 */
export interface DemoManifest {
  seed: number;
  docs: number;
  /** ISO time every timestamp was derived from. */
  now: string;
  users: { total: number; activeLast15Min: number };
  trades: {
    total: number;
    /** In the old shape and valid: the migration changes exactly these. */
    legacy: number;
    alreadyV2: number;
    /** Fail `from` (invalid-source). */
    malformed: { missingCreator: number; skillsNotArray: number };
    skills: Record<SkillShape, number>;
    participant: Record<ParticipantState, number>;
    orphans: { creator: number; participant: number };
    /** All trades, whatever their shape. */
    byStatus: Record<TradeStatus, number>;
  };
  conversations: {
    total: number;
    legacy: number;
    alreadyV2: number;
    malformed: { participantWithoutId: number };
    keys: Record<ParticipantKeys, number>;
    duplicateParticipant: number;
    orphans: { participant: number };
  };
}

export const DEMO_COLLECTIONS = { users: 'users', trades: 'trades', conversations: 'conversations' } as const;
type DemoCollection = keyof typeof DEMO_COLLECTIONS;

// ---- deterministic randomness -----------------------------------------------------------------

export type Rng = () => number;

/** mulberry32: a small, fast PRNG with a 32-bit state; returns floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** MurmurHash3's finaliser: a bijection on 32-bit integers that scatters neighbouring inputs. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hash32(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) h = fmix32((h ^ Math.imul(part >>> 0, 0x9e3779b1)) >>> 0);
  return h;
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)];
const between = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1));

function weighted<T extends string>(rng: Rng, weights: Readonly<Record<T, number>>): T {
  let roll = rng() * Object.values<number>(weights).reduce((sum, w) => sum + w, 0);
  const entries = Object.entries(weights) as [T, number][];
  for (const [value, weight] of entries) {
    roll -= weight;
    if (roll < 0) return value;
  }
  return entries[entries.length - 1][0];
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

// ---- case layout ------------------------------------------------------------------------------

const BLOCK_SIZE = 100;
const STREAM = { users: 1, trades: 2, conversations: 3, layout: 4 } as const;
/**
 * Users from this index on are referenced but never written: orphans. An id is a bijection of its
 * index, so an orphan's id never equals a real user's.
 */
const ORPHAN_USER_BASE = 0x80000000;
/** Keeps every index, orphans included, within the 32 bits the ids are made from. */
const MAX_DOCS = 100_000_000;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const repeat = <T>(n: number, slot: T): T[] => Array.from({ length: n }, () => slot);

/** A block is its shuffled head (the rare cases, one each) followed by its shuffled tail. */
interface BlockPlan<Case> {
  head: Partial<Case>[];
  tail: Partial<Case>[];
}

const TRADE_BLOCK: BlockPlan<TradeCase> = {
  head: [
    { kind: 'alreadyV2' },
    { kind: 'missingCreator' },
    { kind: 'skillsNotArray' },
    { kind: 'legacy', orphan: 'creator' },
    { kind: 'legacy', orphan: 'participant', participant: 'present' },
    { kind: 'legacy', skills: 'strings' },
    { kind: 'legacy', skills: 'objects' },
    { kind: 'legacy', skills: 'mixed' },
    { kind: 'legacy', participant: 'absent' },
    { kind: 'legacy', participant: 'null' },
    ...repeat(10, { kind: 'legacy' } as const),
  ],
  tail: [...repeat(4, { kind: 'alreadyV2' } as const), ...repeat(76, { kind: 'legacy' } as const)],
};

const CONVERSATION_BLOCK: BlockPlan<ConversationCase> = {
  head: [
    { kind: 'alreadyV2' },
    { kind: 'participantWithoutId' },
    { kind: 'legacy', orphanParticipant: true },
    { kind: 'legacy', keys: 'idName' },
    { kind: 'legacy', keys: 'userIdDisplayName' },
    { kind: 'legacy', keys: 'mixed' },
    { kind: 'legacy', duplicateParticipant: true },
    ...repeat(3, { kind: 'legacy' } as const),
  ],
  tail: [...repeat(4, { kind: 'alreadyV2' } as const), ...repeat(86, { kind: 'legacy' } as const)],
};

/** The forced part of each position's case, one block at a time (only the current block is kept). */
class BlockLayout<Case> {
  private block = -1;
  private slots: Partial<Case>[] = [];

  constructor(
    private readonly plan: BlockPlan<Case>,
    private readonly seed: number,
    private readonly stream: number,
  ) {
    if (plan.head.length + plan.tail.length !== BLOCK_SIZE) throw new Error('a block plan must fill a block');
  }

  slotAt(index: number): Partial<Case> {
    const block = Math.floor(index / BLOCK_SIZE);
    if (block !== this.block) {
      const rng = mulberry32(hash32(this.seed, STREAM.layout, this.stream, block));
      this.slots = [...shuffle(rng, [...this.plan.head]), ...shuffle(rng, [...this.plan.tail])];
      this.block = block;
    }
    return this.slots[index % BLOCK_SIZE];
  }
}

// ---- vocabulary -------------------------------------------------------------------------------

const SKILLS: ReadonlyArray<{ name: string; category: string }> = [
  { name: 'Guitar', category: 'music' },
  { name: 'Piano', category: 'music' },
  { name: 'Spanish Tutoring', category: 'language' },
  { name: 'Japanese (日本語)', category: 'language' },
  { name: 'Web Design & UX', category: 'tech' },
  { name: 'C++ Programming', category: 'tech' },
  { name: 'Data Analysis', category: 'tech' },
  { name: 'Video Editing', category: 'media' },
  { name: 'Photography', category: 'media' },
  { name: 'Café Barista', category: 'food' },
  { name: 'Baking', category: 'food' },
  { name: 'Carpentry', category: 'home' },
  { name: 'Plumbing', category: 'home' },
  { name: 'Gardening', category: 'home' },
  { name: 'Bike Repair', category: 'home' },
  { name: 'Knitting', category: 'craft' },
  { name: 'Sewing', category: 'craft' },
  { name: 'Yoga', category: 'fitness' },
  { name: 'Dog Training', category: 'pets' },
  { name: 'Résumé Writing', category: 'business' },
  { name: 'Tax Preparation', category: 'business' },
  { name: 'Math Tutoring', category: 'education' },
];
const FIRST_NAMES = ['Ada', 'Bruno', 'Chloé', 'Dmitri', 'Emeka', 'Fatima', 'Grace', 'Hiro', 'Inés', 'Jonas', 'Kavya', 'Liam', 'Mei', 'Noah', 'Olu', 'Priya', 'Quinn', 'Rosa', 'Sven', 'Tariq', 'Uma', 'Viktor', 'Wen', 'Yara', 'Zoë'];
const LAST_NAMES = ['Almeida', 'Becker', 'Chen', 'Diallo', 'Evans', 'Fischer', 'García', 'Haddad', 'Ivanova', 'Jensen', 'Kowalski', 'Lopez', 'Mensah', 'Nakamura', 'Okafor', 'Patel', 'Rossi', 'Silva', 'Tanaka', 'Novak'];
const CITIES = ['Lisbon', 'Lagos', 'Osaka', 'Austin', 'Berlin', 'Toronto', 'Pune', 'Remote'];
const MESSAGES = ['Sounds good!', 'When are you free?', 'Can we move it to Saturday?', 'Thanks, see you then.', 'I sent the details.'];
/** A hand-typed level the migration must lower-case. */
const SHOUTED_LEVELS = ['Beginner', 'Intermediate', 'Advanced', 'Expert', ' advanced '];

// ---- the dataset ------------------------------------------------------------------------------

export class DemoDataset {
  readonly seed: number;
  readonly docs: number;
  readonly now: Date;
  readonly counts: { users: number; trades: number; conversations: number };
  private readonly tradeLayout: BlockLayout<TradeCase>;
  private readonly conversationLayout: BlockLayout<ConversationCase>;
  private readonly idKeys: Record<DemoCollection, number>;

  constructor(options: DemoSeedOptions) {
    const { docs, seed, now = new Date() } = options;
    if (!Number.isSafeInteger(docs) || docs < 1 || docs > MAX_DOCS) {
      throw new Error(`demo data: docs must be an integer from 1 to ${MAX_DOCS}, got ${String(docs)}`);
    }
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`demo data: seed must be an integer from 0 to 4294967295, got ${String(seed)}`);
    }
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new Error('demo data: now must be a valid Date');
    this.seed = seed;
    this.docs = docs;
    this.now = now;
    this.counts = { users: Math.max(10, Math.ceil(docs / 4)), trades: docs, conversations: Math.ceil(docs / 2) };
    this.tradeLayout = new BlockLayout(TRADE_BLOCK, seed, STREAM.trades);
    this.conversationLayout = new BlockLayout(CONVERSATION_BLOCK, seed, STREAM.conversations);
    this.idKeys = {
      users: hash32(seed, STREAM.users),
      trades: hash32(seed, STREAM.trades),
      conversations: hash32(seed, STREAM.conversations),
    };
  }

  private id(collection: DemoCollection, index: number): string {
    return fmix32((index ^ this.idKeys[collection]) >>> 0).toString(16).padStart(8, '0');
  }

  private rng(stream: number, index: number): Rng {
    return mulberry32(hash32(this.seed, stream, index, 1));
  }

  private ago(ms: number): Timestamp {
    return Timestamp.fromMillis(this.now.getTime() - ms);
  }

  userId(index: number): string {
    return this.id('users', index);
  }

  /** The id of the k-th user that is referenced but does not exist. */
  orphanUserId(k: number): string {
    return this.userId(ORPHAN_USER_BASE + k);
  }

  user(index: number): GeneratedDoc<UserCase> {
    const rng = this.rng(STREAM.users, index);
    const first = pick(rng, FIRST_NAMES);
    const last = pick(rng, LAST_NAMES);
    const id = this.userId(index);
    const recentlyActive = index % 5 === 0;
    const createdAt = this.ago(between(rng, 31, 900) * DAY);
    return {
      id,
      case: { recentlyActive },
      data: {
        displayName: `${first} ${last}`,
        email: `${first}.${last}.${id}@example.com`.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase(),
        photoURL: rng() < 0.8 ? `https://example.com/avatars/${id}.png` : null,
        city: pick(rng, CITIES),
        createdAt,
        lastActiveAt: this.ago(recentlyActive ? between(rng, 0, 5 * MINUTE) : between(rng, 60 * MINUTE, 30 * DAY)),
      },
    };
  }

  /** A user who exists, other than `except`. */
  private someUser(rng: Rng, except?: number): number {
    const count = this.counts.users;
    const index = Math.floor(rng() * count);
    return index === except ? (index + 1) % count : index;
  }

  trade(index: number): GeneratedDoc<TradeCase> {
    const rng = this.rng(STREAM.trades, index);
    const slot = this.tradeLayout.slotAt(index);
    const tradeCase: TradeCase = {
      kind: slot.kind ?? 'legacy',
      skills: slot.skills ?? weighted<SkillShape>(rng, { strings: 30, objects: 40, mixed: 30 }),
      participant: slot.participant ?? weighted<ParticipantState>(rng, { present: 80, null: 10, absent: 10 }),
      orphan: slot.orphan ?? 'none',
    };
    const creator = this.someUser(rng);
    const creatorId = tradeCase.orphan === 'creator' ? this.orphanUserId(index) : this.userId(creator);
    const offered = skillsFor(rng, tradeCase.skills);
    const requested = skillsFor(rng, tradeCase.skills);
    const joined = tradeCase.participant === 'present';
    const status: TradeStatus = joined
      ? weighted<TradeStatus>(rng, { open: 10, active: 30, in_progress: 25, completed: 25, cancelled: 10 })
      : weighted<TradeStatus>(rng, { open: 85, active: 0, in_progress: 0, completed: 0, cancelled: 15 });
    const createdAt = this.ago(between(rng, 1, 365 * DAY));
    const data: DocData = {
      title: `${skillName(offered[0])} for ${skillName(requested[0])}`,
      description: `Offering ${offered.map(skillName).join(', ')} in exchange for ${requested.map(skillName).join(', ')}.`,
      status,
      creatorId,
      offeredSkills: offered,
      requestedSkills: requested,
      location: pick(rng, CITIES),
      createdAt,
      updatedAt: Timestamp.fromMillis(createdAt.toMillis() + between(rng, 0, 7 * DAY)),
    };
    if (tradeCase.participant === 'null') data.participantId = null;
    if (joined) {
      data.participantId = tradeCase.orphan === 'participant' ? this.orphanUserId(index) : this.userId(this.someUser(rng, creator));
    }
    const id = this.id('trades', index);
    if (tradeCase.kind === 'alreadyV2') Object.assign(data, v2Fields(tradesV2.up(data, { path: `trades/${id}`, id })));
    if (tradeCase.kind === 'missingCreator') delete data.creatorId;
    if (tradeCase.kind === 'skillsNotArray') {
      // Two ways apps got this wrong: one comma-separated string, or a map keyed by position.
      data.offeredSkills = rng() < 0.5 ? offered.map(skillName).join(', ') : Object.fromEntries(offered.map((s, i) => [String(i), s]));
    }
    return { id, case: tradeCase, data };
  }

  conversation(index: number): GeneratedDoc<ConversationCase> {
    const rng = this.rng(STREAM.conversations, index);
    const slot = this.conversationLayout.slotAt(index);
    const conversationCase: ConversationCase = {
      kind: slot.kind ?? 'legacy',
      keys: slot.keys ?? weighted<ParticipantKeys>(rng, { idName: 40, userIdDisplayName: 40, mixed: 20 }),
      duplicateParticipant: slot.duplicateParticipant ?? rng() < 0.05,
      orphanParticipant: slot.orphanParticipant ?? false,
    };
    const first = this.someUser(rng);
    const people = [this.user(first), conversationCase.orphanParticipant ? this.user(ORPHAN_USER_BASE + index) : this.user(this.someUser(rng, first))];
    const styles: Array<'idName' | 'userIdDisplayName'> =
      conversationCase.keys === 'mixed' ? ['idName', 'userIdDisplayName'] : [conversationCase.keys, conversationCase.keys];
    const participants: DocData[] = people.map((person, i) => participantEntry(person, styles[i]));
    if (conversationCase.duplicateParticipant) {
      // The same user again, written by a client that used the other key style.
      participants.push(participantEntry(people[0], styles[0] === 'idName' ? 'userIdDisplayName' : 'idName'));
    }
    if (conversationCase.kind === 'participantWithoutId') {
      delete participants[1].id;
      delete participants[1].userId;
    }
    const createdAt = this.ago(between(rng, 1, 180 * DAY));
    const data: DocData = {
      participants,
      // Conversations start from a trade; trade i exists because there are fewer conversations than trades.
      tradeId: this.id('trades', index),
      lastMessage: pick(rng, MESSAGES),
      createdAt,
      updatedAt: Timestamp.fromMillis(createdAt.toMillis() + between(rng, 0, 30 * DAY)),
    };
    const id = this.id('conversations', index);
    if (conversationCase.kind === 'alreadyV2') {
      Object.assign(data, v2Fields(conversationsV2.up(data, { path: `conversations/${id}`, id })));
    }
    return { id, case: conversationCase, data };
  }

  *users(): Generator<GeneratedDoc<UserCase>> {
    for (let i = 0; i < this.counts.users; i++) yield this.user(i);
  }
  *trades(): Generator<GeneratedDoc<TradeCase>> {
    for (let i = 0; i < this.counts.trades; i++) yield this.trade(i);
  }
  *conversations(): Generator<GeneratedDoc<ConversationCase>> {
    for (let i = 0; i < this.counts.conversations; i++) yield this.conversation(i);
  }
}

type LegacySkillValue = string | DocData;

function skillName(skill: LegacySkillValue): string {
  return typeof skill === 'string' ? skill : (skill.name as string);
}

function skillsFor(rng: Rng, shape: SkillShape): LegacySkillValue[] {
  const chosen = shuffle(rng, [...SKILLS.keys()]).slice(0, between(rng, shape === 'mixed' ? 2 : 1, 3));
  // A mixed list has at least one string and one object; its other entries go either way.
  const stringAt = Math.floor(rng() * chosen.length);
  const objectAt = (stringAt + 1 + Math.floor(rng() * (chosen.length - 1))) % chosen.length;
  return chosen.map((skill, i) => {
    const asString =
      shape === 'strings' || (shape === 'mixed' && i !== objectAt && (i === stringAt || rng() < 0.5));
    return asString ? SKILLS[skill].name : skillObject(rng, skill);
  });
}

/** The object variants old clients wrote: complete, without id, without level, hand-typed level, nulls, extra keys. */
function skillObject(rng: Rng, catalogIndex: number): DocData {
  const { name, category } = SKILLS[catalogIndex];
  const level = pick(rng, SKILL_LEVELS);
  switch (between(rng, 0, 5)) {
    case 0:
      return { id: `sk${catalogIndex}`, name, level, category };
    case 1:
      return { name, level, category };
    case 2:
      return { id: `sk${catalogIndex}`, name, category };
    case 3:
      return { name, level: pick(rng, SHOUTED_LEVELS) };
    case 4:
      return { name, level: null, category: null };
    default:
      return { name, level, yearsExperience: between(rng, 1, 20) };
  }
}

function participantEntry(person: GeneratedDoc<UserCase>, style: 'idName' | 'userIdDisplayName'): DocData {
  const { displayName, photoURL } = person.data;
  return style === 'idName'
    ? { id: person.id, name: displayName, avatar: photoURL }
    : { userId: person.id, displayName, photoURL };
}

/** The fields an up-to-date client writes beside the legacy ones: what the migration would add, plus the marker. */
function v2Fields(result: unknown): DocData {
  return { ...(result as DocData), schemaVersion: SCHEMA_VERSION_V2 };
}

// ---- manifest ---------------------------------------------------------------------------------

function emptyManifest(dataset: DemoDataset): DemoManifest {
  return {
    seed: dataset.seed,
    docs: dataset.docs,
    now: dataset.now.toISOString(),
    users: { total: 0, activeLast15Min: 0 },
    trades: {
      total: 0,
      legacy: 0,
      alreadyV2: 0,
      malformed: { missingCreator: 0, skillsNotArray: 0 },
      skills: { strings: 0, objects: 0, mixed: 0 },
      participant: { present: 0, null: 0, absent: 0 },
      orphans: { creator: 0, participant: 0 },
      byStatus: { open: 0, active: 0, in_progress: 0, completed: 0, cancelled: 0 },
    },
    conversations: {
      total: 0,
      legacy: 0,
      alreadyV2: 0,
      malformed: { participantWithoutId: 0 },
      keys: { idName: 0, userIdDisplayName: 0, mixed: 0 },
      duplicateParticipant: 0,
      orphans: { participant: 0 },
    },
  };
}

type DemoDocument =
  | { collection: 'users'; doc: GeneratedDoc<UserCase> }
  | { collection: 'trades'; doc: GeneratedDoc<TradeCase> }
  | { collection: 'conversations'; doc: GeneratedDoc<ConversationCase> };

function* demoDocuments(dataset: DemoDataset): Generator<DemoDocument> {
  for (const doc of dataset.users()) yield { collection: 'users', doc };
  for (const doc of dataset.trades()) yield { collection: 'trades', doc };
  for (const doc of dataset.conversations()) yield { collection: 'conversations', doc };
}

function tally(manifest: DemoManifest, item: DemoDocument): void {
  if (item.collection === 'users') {
    manifest.users.total++;
    if (item.doc.case.recentlyActive) manifest.users.activeLast15Min++;
    return;
  }
  if (item.collection === 'trades') {
    const t = manifest.trades;
    const c = item.doc.case;
    t.total++;
    t.byStatus[item.doc.data.status as TradeStatus]++;
    if (c.kind === 'alreadyV2') t.alreadyV2++;
    else if (c.kind === 'missingCreator') t.malformed.missingCreator++;
    else if (c.kind === 'skillsNotArray') t.malformed.skillsNotArray++;
    else {
      t.legacy++;
      t.skills[c.skills]++;
      t.participant[c.participant]++;
      if (c.orphan !== 'none') t.orphans[c.orphan]++;
    }
    return;
  }
  const m = manifest.conversations;
  const c = item.doc.case;
  m.total++;
  if (c.kind === 'alreadyV2') m.alreadyV2++;
  else if (c.kind === 'participantWithoutId') m.malformed.participantWithoutId++;
  else {
    m.legacy++;
    m.keys[c.keys]++;
    if (c.duplicateParticipant) m.duplicateParticipant++;
    if (c.orphanParticipant) m.orphans.participant++;
  }
}

/** The manifest `seedDemoData` returns for these options, computed without writing anything. */
export function demoManifest(options: DemoSeedOptions): DemoManifest {
  const dataset = new DemoDataset(options);
  const manifest = emptyManifest(dataset);
  for (const item of demoDocuments(dataset)) tally(manifest, item);
  return manifest;
}

// ---- writing ----------------------------------------------------------------------------------

/** Writes enqueued between flushes: bounds what the BulkWriter buffers, whatever the data size. */
const FLUSH_EVERY = 2000;

/**
 * Writes the demo dataset (users, then trades, then conversations) with `set`, so seeding again
 * with the same options rewrites identical documents; documents it did not generate are left alone.
 */
export async function seedDemoData(db: Firestore, options: DemoSeedOptions): Promise<DemoManifest> {
  const dataset = new DemoDataset(options);
  const manifest = emptyManifest(dataset);
  // The production ramp (500 ops/s, +50 % every 5 minutes) protects a live database; the emulator needs none.
  const writer = db.bulkWriter({ throttling: !process.env.FIRESTORE_EMULATOR_HOST });
  let failure: { path: string; error: unknown } | undefined;
  let enqueued = 0;
  for (const item of demoDocuments(dataset)) {
    const ref = db.collection(DEMO_COLLECTIONS[item.collection]).doc(item.doc.id);
    writer.set(ref, item.doc.data).catch((error: unknown) => {
      failure ??= { path: ref.path, error };
    });
    tally(manifest, item);
    if (++enqueued % FLUSH_EVERY === 0) {
      await writer.flush();
      if (failure) break;
    }
  }
  await writer.close();
  if (failure) {
    const reason = failure.error instanceof Error ? failure.error.message : String(failure.error);
    throw new Error(`demo data: writing ${failure.path} failed: ${reason}`, { cause: failure.error });
  }
  return manifest;
}
