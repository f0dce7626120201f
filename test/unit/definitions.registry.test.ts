import {
  compareVersions,
  createRegistry,
  defineMigration,
  DefinitionError,
  DuplicateMigrationError,
  UnknownMigrationError,
  type Migration,
} from '../../functions/src/definitions';
import { validDefinition } from '../fixtures/migrations/valid-definition';

const migration = (id: string, version: string) => defineMigration(validDefinition({ id, version }));

function thrown(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('createRegistry', () => {
  it('orders by version, numerically per part, then by id', () => {
    const registry = createRegistry([
      migration('c', '10.1'),
      migration('b', '2.0'),
      migration('d', '10.0'),
      migration('a', '2.0'),
      migration('e', '9'),
      migration('f', '2.0.1'),
    ]);
    expect(registry.all().map((m) => `${m.id}@${m.version}`)).toEqual(['a@2.0', 'b@2.0', 'f@2.0.1', 'e@9', 'd@10.0', 'c@10.1']);
  });

  it('gets a migration by id and says whether it has one', () => {
    const trades = migration('trades-v2', '2.0');
    const registry = createRegistry([trades, migration('conversations-v2', '2.0')]);
    expect(registry.get('trades-v2')).toBe(trades);
    expect(registry.has('trades-v2')).toBe(true);
    expect(registry.has('users-v2')).toBe(false);
  });

  it('names the unknown id and lists the known ones, in order', () => {
    const registry = createRegistry([migration('trades-v2', '2.0'), migration('conversations-v2', '2.0')]);
    const error = thrown(() => registry.get('users-v2'));
    expect(error).toBeInstanceOf(UnknownMigrationError);
    expect(error.message).toBe('Unknown migration "users-v2" (known: conversations-v2, trades-v2).');
    expect(thrown(() => createRegistry([]).get('x')).message).toBe('Unknown migration "x" (no migrations are registered).');
  });

  it('refuses two migrations with the same id', () => {
    const error = thrown(() => createRegistry([migration('trades-v2', '2.0'), migration('trades-v2', '3.0')]));
    expect(error).toBeInstanceOf(DuplicateMigrationError);
    expect(error.message).toBe('Migration id "trades-v2" is defined more than once; every migration needs its own id.');
  });

  it('refuses a definition that did not go through defineMigration', () => {
    const error = thrown(() => createRegistry([migration('a', '1.0'), validDefinition() as Migration]));
    expect(error).toBeInstanceOf(DefinitionError);
    expect(error.message).toBe(
      'Invalid migration definition (unnamed):\n  - registry entry [1]: expected a migration returned by defineMigration (with a checksum)',
    );
  });

  it('returns a copy from all(), so callers cannot reorder the registry', () => {
    const registry = createRegistry([migration('a', '1.0'), migration('b', '2.0')]);
    registry.all().reverse();
    expect(registry.all().map((m) => m.id)).toEqual(['a', 'b']);
  });
});

describe('compareVersions', () => {
  it.each([
    ['2.0', '10.0', -1],
    ['10.0', '10.1', -1],
    ['10.1', '10.0', 1],
    ['2', '2.0', 0],
    ['2.0.1', '2.0', 1],
    ['1.10', '1.9', 1],
  ])('%s vs %s → %d', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });
});
