import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../functions/src/cli/main';
import { checkRules, collectionsOfTargets, type GuardedCollection, type RulesFinding } from '../../functions/src/compat/rules-check';
import { RulesSyntaxError, tokenize } from '../../functions/src/compat/rules-syntax';
import { projectMigrations } from '../../functions/src/migrations';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'rules');
const read = (path: string) => readFileSync(path, 'utf8');
const fixture = (name: string) => join(FIXTURES, name);

const registryCollections = collectionsOfTargets(projectMigrations.map((migration) => migration.target));
const tradesAndConversations: GuardedCollection[] = [{ collectionGroup: 'trades' }, { collectionGroup: 'conversations' }];

const summary = (findings: RulesFinding[]) => findings.map((finding) => [finding.line, finding.kind, finding.methods.join(',')]);

/** Rules source with `body` inside the documents match. */
const rulesWith = (body: string) =>
  `rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n${body}\n  }\n}\n`;

describe('checkRules on files', () => {
  it("passes the repository's own firestore.rules, against the registry's collections and any-depth ids", () => {
    const source = read(join(ROOT, 'firestore.rules'));
    expect(registryCollections).toEqual([{ collectionPath: 'trades' }, { collectionPath: 'conversations' }]);
    expect(checkRules(source, { collections: registryCollections })).toEqual([]);
    expect(checkRules(source, { collections: [...tradesAndConversations, { collectionGroup: 'users' }] })).toEqual([]);
  });

  it('flags the broad allow, the unguarded writes, the opened control data and the collection wildcard on their lines', () => {
    const findings = checkRules(read(fixture('broad-allow.rules')), { collections: registryCollections });
    expect(summary(findings)).toEqual([
      [17, 'recursive-wildcard', 'read,write'],
      [17, 'unguarded-write', 'read,write'],
      // A string that mentions the guard is not a call of it.
      [23, 'unguarded-write', 'update'],
      // Line 24 is a comment. An admin branch without the guard bypasses it.
      [25, 'unguarded-write', 'delete'],
      [35, 'control-data-allowed', 'read'],
      [39, 'collection-wildcard', 'get'],
    ]);
    const [wildcard, broadWrite] = findings;
    expect(wildcard).toMatchObject({ column: 7, match: '/{document=**}' });
    expect(wildcard.message).toContain('_migrations/…');
    expect(wildcard.message).toContain('_firemigrate_mode/current');
    expect(broadWrite.message).toContain('can write trades, conversations,');
    expect(findings[4].message).toContain('opens the control data _migrations/…');
    expect(findings[4].message).not.toContain('_firemigrate_mode');
  });

  it('accepts guards through functions, in every branch of || and ?:, and false conditions, despite strings and comments', () => {
    const source = read(fixture('guarded.rules'));
    expect(checkRules(source, { collections: tradesAndConversations })).toEqual([]);
    // The same file with users migrated: its profile write is the one unguarded statement.
    expect(summary(checkRules(source, { collections: [{ collectionGroup: 'users' }] }))).toEqual([[45, 'unguarded-write', 'write']]);
  });

  it('reports a syntax error with its position', () => {
    expect(() => checkRules(read(fixture('unclosed.rules')), { collections: registryCollections })).toThrow(RulesSyntaxError);
    try {
      checkRules(read(fixture('unclosed.rules')), { collections: registryCollections });
    } catch (error) {
      expect(error).toMatchObject({ line: 6, column: 5 });
      expect((error as RulesSyntaxError).problem).toBe('expected ")" to close the "(" of line 5, column 47, found "}"');
    }
  });
});

describe('checkRules on statements', () => {
  const trades: GuardedCollection[] = [{ collectionPath: 'trades' }];
  const check = (body: string, collections = trades, controlCollections?: string[]) =>
    summary(checkRules(rulesWith(body), { collections, controlCollections }));

  it('a ternary needs the guard in both branches', () => {
    expect(check("match /trades/{t} { allow update: if x ? migrationAllowsWrite('trades') : true; }")).toEqual([[4, 'unguarded-write', 'update']]);
    expect(check("match /trades/{t} { allow update: if x ? migrationAllowsWrite('trades') : (y && migrationAllowsWrite('trades')); }")).toEqual([]);
  });

  it('a negated guard, a guard inside another call and a write without condition are unguarded', () => {
    expect(check("match /trades/{t} { allow write: if !migrationAllowsWrite('trades'); }")).toEqual([[4, 'unguarded-write', 'write']]);
    expect(check("match /trades/{t} { allow write: if debug(migrationAllowsWrite('trades')); }")).toEqual([[4, 'unguarded-write', 'write']]);
    expect(check('match /trades/{t} { allow create; }')).toEqual([[4, 'unguarded-write', 'create']]);
    expect(check('match /trades/{t} { allow read; }')).toEqual([]);
  });

  it('a function that calls itself through another is not taken for a guard', () => {
    const body = 'function a() { return b(); }\nfunction b() { return a(); }\nmatch /trades/{t} { allow write: if a(); }';
    expect(check(body)).toEqual([[6, 'unguarded-write', 'write']]);
  });

  it('a collection id matches at any depth; a collection path only where it is', () => {
    const body = 'match /users/{uid} {\n  match /trades/{t} { allow write: if true; }\n}';
    expect(check(body)).toEqual([]);
    expect(check(body, [{ collectionGroup: 'trades' }])).toEqual([[5, 'unguarded-write', 'write']]);
    expect(check(body, [{ collectionPath: 'users/u1/trades' }])).toEqual([[5, 'unguarded-write', 'write']]);
  });

  it('a recursive wildcard below a literal collection does not reach the control data', () => {
    expect(check('match /trades/{rest=**} { allow read: if true; }')).toEqual([]);
    expect(check('match /{coll}/{id}/comments/{c} { allow read: if true; }')).toEqual([[4, 'collection-wildcard', 'read']]);
  });

  it('uses the configured control collection and always protects the mode document', () => {
    const body = 'match /svc_migrations/{d} { allow read: if true; }\nmatch /_migrations/{d} { allow read: if true; }\nmatch /_firemigrate_mode/{d} { allow get: if true; }';
    expect(check(body, trades, ['svc_migrations'])).toEqual([
      [4, 'control-data-allowed', 'read'],
      [6, 'control-data-allowed', 'get'],
    ]);
  });
});

describe('tokenize', () => {
  it('drops comments, keeps strings whole and reads match paths with their wildcards', () => {
    const tokens = tokenize("// c\nmatch /a/{b}/{c=**} { /* x\n y */ allow read: if 'it''s' == \"}\\\"\"; }");
    expect(tokens.map((token) => [token.type, token.value, token.line])).toEqual([
      ['ident', 'match', 2],
      ['path', '/a/{b}/{c=**}', 2],
      ['punct', '{', 2],
      ['ident', 'allow', 3],
      ['ident', 'read', 3],
      ['punct', ':', 3],
      ['ident', 'if', 3],
      ['string', "'it'", 3],
      ['string', "'s'", 3],
      ['punct', '==', 3],
      ['string', '"}\\""', 3],
      ['punct', ';', 3],
      ['punct', '}', 3],
      ['eof', '', 3],
    ]);
  });
});

describe('firemigrate rules check', () => {
  let stdout: string;
  let write: jest.SpyInstance;

  beforeEach(() => {
    stdout = '';
    write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += chunk.toString();
      return true;
    });
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    // The CLI sets the exit code for its process; this test process must not inherit it.
    process.exitCode = undefined;
  });

  const cli = (...args: string[]) => main(['node', 'firemigrate', ...args]);

  it('exits 1 with the findings as JSON for the broad fixture', async () => {
    expect(await cli('rules', 'check', fixture('broad-allow.rules'), '--json')).toBe(1);
    expect(write).toHaveBeenCalled();
    const report = JSON.parse(stdout);
    expect(report.ok).toBe(false);
    expect(report.collections).toEqual(['conversations', 'trades']);
    expect(report.controlCollections).toEqual(['_migrations', '_firemigrate_mode']);
    expect(report.findings.map((finding: RulesFinding) => [finding.line, finding.kind])).toEqual([
      [17, 'recursive-wildcard'],
      [17, 'unguarded-write'],
      [23, 'unguarded-write'],
      [25, 'unguarded-write'],
      [35, 'control-data-allowed'],
      [39, 'collection-wildcard'],
    ]);
  });

  it('exits 0 on the repository rules and prints file:line findings in text', async () => {
    expect(await cli('rules', 'check', join(ROOT, 'firestore.rules'))).toBe(0);
    expect(stdout).toMatch(/firestore\.rules: no findings \(migrated collections: conversations, trades; control data: _migrations, _firemigrate_mode\)\./);
    stdout = '';
    expect(await cli('rules', 'check', fixture('guarded.rules'), '--collections', 'users')).toBe(1);
    expect(stdout.split('\n')[0]).toMatch(/guarded\.rules:45:7: unguarded-write: allow write on \/users\/\{uid\} can write users \(any depth\)/);
  });

  it('exits 2 on a file that cannot be read or parsed', async () => {
    expect(await cli('rules', 'check', fixture('unclosed.rules'))).toBe(2);
    expect(await cli('rules', 'check', fixture('no-such.rules'))).toBe(2);
    expect(stdout).toBe('');
  });
});
