import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BACKUPS_COLLECTION_ID, DEFAULT_CONTROL_COLLECTION, MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';

/*
 * firebase-tools 14 decides what a functions deploy uploads with minimatch 3 (jest depends on the
 * same major): every entry of `ignore` is matched against each ABSOLUTE path with
 * `{ matchBase: true, dot: true }`, directories before their contents (src/fsAsync.ts). So a bare
 * name excludes that name at any depth, while a pattern with a slash must start with `**` to
 * match at all — `functions/src` alone would silently upload the sources.
 */
const minimatch = require('minimatch') as (path: string, pattern: string, options: object) => boolean;

const root = join(__dirname, '../..');
const readJson = (file: string): any => JSON.parse(readFileSync(join(root, file), 'utf8'));

const firebaseJson = readJson('firebase.json');
const codebase = firebaseJson.functions.find((entry: { codebase?: string }) => entry.codebase === 'firemigrate');

function isIgnored(relativePath: string): boolean {
  const segments = relativePath.split('/');
  return segments.some((_, i) => {
    const absolute = join(root, codebase.source, ...segments.slice(0, i + 1));
    return codebase.ignore.some((pattern: string) => minimatch(absolute, pattern, { matchBase: true, dot: true }));
  });
}

/** What a deploy would upload from this working tree, walked the way firebase-tools walks it. */
function uploadedFiles(dir = join(root, codebase.source)): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = relative(root, join(dir, entry.name));
    if (isIgnored(path)) return [];
    return entry.isDirectory() ? uploadedFiles(join(dir, entry.name)) : [path];
  });
}

describe('firebase.json', () => {
  it('deploys firemigrate as its own codebase from the package root on a supported runtime', () => {
    expect(Array.isArray(firebaseJson.functions)).toBe(true);
    expect(codebase).toBeDefined();
    expect(codebase.source).toBe('.');
    expect(['nodejs22', 'nodejs24']).toContain(codebase.runtime);
    expect(codebase.predeploy).toEqual(['npm --prefix "$RESOURCE_DIR" run build']);
    expect(readJson('package.json').main).toBe('functions/lib/index.js');
  });

  it('names rules and indexes files that exist', () => {
    expect(firebaseJson.firestore).toEqual({ rules: 'firestore.rules', indexes: 'firestore.indexes.json' });
    expect(existsSync(join(root, firebaseJson.firestore.rules))).toBe(true);
    expect(existsSync(join(root, firebaseJson.firestore.indexes))).toBe(true);
  });

  it('uploads the built code and package files, never tests, sources, benchmarks or node_modules', () => {
    for (const kept of ['package.json', 'package-lock.json', 'functions/lib/index.js', 'functions/lib/cli/main.js', 'functions/lib/dashboard/index.html', '.env']) {
      expect([kept, isIgnored(kept)]).toEqual([kept, false]);
    }
    const excluded = [
      'node_modules/zod/package.json',
      'test/unit/project-files.test.ts',
      'test/support/emulator.ts',
      'bench/run.ts',
      'functions/src/index.ts',
      'functions/src/dashboard/main.ts',
      '.git/HEAD',
      '.ci/run.sh',
      'firebase-debug.log',
      '.env.local',
    ];
    for (const path of excluded) expect([path, isIgnored(path)]).toEqual([path, true]);

    const uploaded = uploadedFiles();
    expect(uploaded).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'firebase.json']));
    const leaked = uploaded.filter((path) => /^(test|bench|node_modules|\.git|\.ci|functions\/src)\//.test(path));
    expect(leaked).toEqual([]);
  });

  it('pins the emulator ports, with the UI off and one project', () => {
    expect(firebaseJson.emulators).toEqual({
      auth: { port: 9099 },
      functions: { port: 5001 },
      firestore: { port: 8080 },
      pubsub: { port: 8085 },
      tasks: { port: 9499 },
      ui: { enabled: false },
      singleProjectMode: true,
    });
  });
});

describe('firestore.indexes.json', () => {
  const indexFile = readJson('firestore.indexes.json');

  it('holds only well-formed composite indexes (the checks firebase-tools runs before deploying)', () => {
    expect(indexFile.indexes.length).toBeGreaterThan(0);
    for (const index of indexFile.indexes) {
      expect(typeof index.collectionGroup).toBe('string');
      expect(['COLLECTION', 'COLLECTION_GROUP']).toContain(index.queryScope);
      expect(index.fields.length).toBeGreaterThanOrEqual(2);
      for (const field of index.fields) {
        expect(typeof field.fieldPath).toBe('string');
        const modes = [field.order, field.arrayConfig].filter((mode) => mode !== undefined);
        expect(modes).toHaveLength(1);
        if (field.order !== undefined) expect(['ASCENDING', 'DESCENDING']).toContain(field.order);
        if (field.arrayConfig !== undefined) expect(field.arrayConfig).toBe('CONTAINS');
      }
    }
  });

  it('has the indexes the compatibility queries and service probes use', () => {
    const signature = (index: { collectionGroup: string; fields: Array<Record<string, string>> }) =>
      `${index.collectionGroup}: ` +
      index.fields.map((field) => `${field.fieldPath} ${field.order ?? field.arrayConfig}`).join(', ');
    expect(indexFile.indexes.map(signature).sort()).toEqual([
      'conversations: participantIds CONTAINS, updatedAt DESCENDING',
      'trades: creatorId ASCENDING, createdAt DESCENDING',
      'trades: participantId ASCENDING, createdAt DESCENDING',
      'trades: participants.creator ASCENDING, createdAt DESCENDING',
      'trades: participants.participant ASCENDING, createdAt DESCENDING',
      'trades: status ASCENDING, createdAt DESCENDING',
    ]);
  });

  it('exempts the before-image data of backup documents from every single-field index', () => {
    for (const override of indexFile.fieldOverrides) {
      expect(Object.keys(override).sort()).toEqual(['collectionGroup', 'fieldPath', 'indexes']);
    }
    const exempt = indexFile.fieldOverrides
      .filter((override: { collectionGroup: string; indexes: unknown[] }) =>
        override.collectionGroup === BACKUPS_COLLECTION_ID && override.indexes.length === 0)
      .map((override: { fieldPath: string }) => override.fieldPath)
      .sort();
    expect(exempt).toEqual(['image', 'path']);
  });
});

describe('firestore.rules', () => {
  const rules = readFileSync(join(root, 'firestore.rules'), 'utf8');
  const code = rules.replace(/\/\/.*$/gm, '');

  it('reads the mode document at the path firemigrate writes it to', () => {
    expect(code).toContain(`/databases/$(database)/documents/${MODE_DOCUMENT_PATH})`);
    expect(code).toMatch(/function firemigrateMode\(\)/);
    expect(code).toMatch(/function migrationAllowsWrite\(collectionName\)/);
  });

  it('closes the control data and has no recursive wildcard at the top level', () => {
    expect(code).toMatch(new RegExp(`match /${DEFAULT_CONTROL_COLLECTION}/\\{document=\\*\\*\\} \\{\\s*allow read, write: if false;`));
    expect(code).toMatch(/match \/_firemigrate_mode\/\{doc\} \{\s*allow read, write: if false;/);
    expect(code).not.toMatch(/match \/\{[^}]*=\*\*\}/);
  });

  it('guards every write condition of the app with migrationAllowsWrite', () => {
    const writes = [...code.matchAll(/allow ([a-z, ]+):\s*if ([^;]+);/g)].filter(([, methods]) =>
      /create|update|delete|write/.test(methods));
    expect(writes.length).toBeGreaterThan(0);
    for (const [statement, , condition] of writes) {
      if (condition.trim() === 'false') continue;
      expect([statement, /&& migrationAllowsWrite\('[a-z]+'\)/.test(condition)]).toEqual([statement, true]);
    }
  });
});
