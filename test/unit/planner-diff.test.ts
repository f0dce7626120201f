import { GeoPoint, Timestamp } from '@google-cloud/firestore';
import {
  describeType,
  diffDocuments,
  formatFieldChange,
  formatFieldPath,
  renderValue,
} from '../../functions/src/engine/document-diff';

const legacyTrade = {
  title: 'Guitar for Piano',
  creatorId: 'user-7f3a',
  offeredSkills: ['Guitar'],
  requestedSkills: [{ name: 'Piano', level: 'Expert' }],
  createdAt: Timestamp.fromMillis(1_700_000_000_000),
};
const migratedTrade = {
  ...legacyTrade,
  createdAt: Timestamp.fromMillis(1_700_000_000_000),
  skillsOffered: [{ id: 'Guitar', name: 'Guitar', level: 'intermediate' }],
  skillsWanted: [{ id: 'piano', name: 'Piano', level: 'expert' }],
  participants: { creator: 'user-7f3a', participant: null },
  schemaVersion: '2.0',
};

const lines = (before: Record<string, unknown>, after: Record<string, unknown>, showValues = false) =>
  diffDocuments(before, after, { showValues }).map(formatFieldChange);

describe('plan diffs', () => {
  it('lists added fields with their types, and an added map field by field', () => {
    expect(lines(legacyTrade, migratedTrade)).toEqual([
      '+ skillsOffered: array<map>',
      '+ skillsWanted: array<map>',
      '+ participants.creator: string',
      '+ participants.participant: null',
      '+ schemaVersion: string',
    ]);
  });

  it('carries no document value unless values are asked for', () => {
    const hidden = diffDocuments(legacyTrade, migratedTrade, { showValues: false });
    const text = JSON.stringify(hidden) + hidden.map(formatFieldChange).join('\n');
    for (const value of ['user-7f3a', 'Guitar', 'Piano', 'intermediate', '2.0']) expect(text).not.toContain(value);
    expect(hidden.every((change) => change.before === undefined && change.after === undefined)).toBe(true);

    expect(lines(legacyTrade, migratedTrade, true)).toEqual([
      '+ skillsOffered: array<map> = [{id: "Guitar", name: "Guitar", level: "intermediate"}]',
      '+ skillsWanted: array<map> = [{id: "piano", name: "Piano", level: "expert"}]',
      '+ participants.creator: string = "user-7f3a"',
      '+ participants.participant: null = null',
      '+ schemaVersion: string = "2.0"',
    ]);
  });

  it('shows a changed value as its type (and values when asked), and a type change as old → new type', () => {
    const before = { status: 'open', count: '3', gone: 'x' };
    const after = { status: 'active', count: 3 };
    expect(lines(before, after)).toEqual(['~ status: string (value changed)', '~ count: string → number', '- gone: string']);
    expect(lines(before, after, true)).toEqual([
      '~ status: string = "open" → "active"',
      '~ count: string = "3" → number = 3',
      '- gone: string = "x"',
    ]);
  });

  it('descends into maps present on both sides and ignores map key order and equal typed values', () => {
    const before = { meta: { a: 1, b: { c: 'x', d: 'y' } }, at: Timestamp.fromMillis(5), where: new GeoPoint(1, 2) };
    const after = { meta: { b: { d: 'y', c: 'z' }, a: 1 }, at: Timestamp.fromMillis(5), where: new GeoPoint(1, 2) };
    expect(lines(before, after)).toEqual(['~ meta.b.c: string (value changed)']);
    expect(lines({ m: { x: [1, { y: 2 }] } }, { m: { x: [1, { y: 2 }] } })).toEqual([]);
    expect(lines({ m: [1, 2] }, { m: [2, 1] })).toEqual(['~ m: array<number> (value changed)']);
  });

  it('back-quotes field names that are not plain identifiers, so a dotted name stays one field', () => {
    expect(formatFieldPath(['a.b', 'c'])).toBe('`a.b`.c');
    expect(formatFieldPath(['with space', 'back`tick'])).toBe('`with space`.`back\\`tick`');
    expect(lines({}, { 'a.b': { c: true } })).toEqual(['+ `a.b`.c: boolean']);
  });

  it('describes value types without their content', () => {
    expect(describeType(['a', { b: 1 }, 'c'])).toBe('array<string|map>');
    expect(describeType([])).toBe('array(empty)');
    expect(describeType({})).toBe('map(empty)');
    expect(describeType(Timestamp.now())).toBe('timestamp');
    expect(describeType(new GeoPoint(0, 0))).toBe('geopoint');
    expect(describeType(10n)).toBe('integer');
    expect(describeType(Buffer.from('x'))).toBe('bytes');
    expect(describeType(null)).toBe('null');
    expect(lines({ empty: {} }, {})).toEqual(['- empty: map(empty)']);
  });

  it('renders values on one short line', () => {
    expect(renderValue('x'.repeat(200))).toHaveLength(80);
    expect(renderValue('x'.repeat(200)).endsWith('…')).toBe(true);
    expect(renderValue(Timestamp.fromMillis(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(renderValue(9007199254740993n)).toBe('9007199254740993');
    expect(renderValue({ 'a.b': [1, 'two', null] })).toBe('{`a.b`: [1, "two", null]}');
  });
});
