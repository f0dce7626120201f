import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The package's public entry points, resolved the way an app resolves them: through the package
 * name (`firemigrate`, `firemigrate/compat`), here by self-reference from inside the package, in a
 * fresh Node process on the BUILT package (functions/lib: `npm run build`).
 */
const root = join(__dirname, '..', '..');

function inFreshNode(script: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, METADATA_SERVER_DETECTION: 'none' } });
  return JSON.parse(out) as Record<string, unknown>;
}

describe('package.json exports', () => {
  beforeAll(() => {
    if (!existsSync(join(root, 'functions/lib/compat/index.js'))) throw new Error('functions/lib is not built: run `npm run build` before this test');
  });

  it('declares the main entry and firemigrate/compat, with TypeScript declarations', () => {
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('firemigrate');
    expect(manifest.exports['.']).toEqual({ types: './functions/lib/index.d.ts', default: './functions/lib/index.js' });
    expect(manifest.exports['./compat']).toEqual({ types: './functions/lib/compat/index.d.ts', default: './functions/lib/compat/index.js' });
    const declarations = readFileSync(join(root, 'functions/lib/compat/index.d.ts'), 'utf8');
    expect(declarations).toContain('readInNewShape');
    expect(declarations).toContain('listUserTrades');
    expect(existsSync(join(root, 'functions/lib/compat/reader.d.ts'))).toBe(true);
  });

  it('resolves both entries through the package name; other files are not exported', () => {
    const result = inFreshNode(`
      let deep;
      try { require.resolve('firemigrate/functions/lib/engine/runner'); deep = 'resolved'; } catch (error) { deep = error.code; }
      console.log(JSON.stringify({ main: require.resolve('firemigrate'), compat: require.resolve('firemigrate/compat'), deep }));
    `);
    expect(result).toEqual({
      main: join(root, 'functions/lib/index.js'),
      compat: join(root, 'functions/lib/compat/index.js'),
      deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });

  it('firemigrate/compat gives the reader, the queries and the modes without loading firebase-functions or the engine', () => {
    const result = inFreshNode(`
      const compat = require('firemigrate/compat');
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({
        exports: Object.keys(compat).sort(),
        firebaseFunctions: loaded.filter((path) => path.includes('/node_modules/firebase-functions/')).length,
        engine: loaded.filter((path) => /\\/functions\\/lib\\/(engine|pipeline|cli|api|rollback|cleanup)\\//.test(path)),
        syncTrigger: loaded.filter((path) => path.includes('sync-trigger')),
      }));
    `);
    expect(result.exports).toEqual(expect.arrayContaining(['readInNewShape', 'listUserTrades', 'listUserConversations', 'getMode', 'setMode', 'MIGRATION_MODES']));
    expect(result.firebaseFunctions).toBe(0);
    expect(result.engine).toEqual([]);
    expect(result.syncTrigger).toEqual([]);
  });
});
