import { DEFAULT_CONTROL_COLLECTION, MODE_DOCUMENT_PATH } from '../control/paths';
import type { MigrationTarget } from '../definitions/types';
import { parseRules, type AllowStatement, type FunctionDeclaration, type PathSegment, type RulesBlock, type Token } from './rules-syntax';

/**
 * `firemigrate rules check`: what in a rules file defeats firemigrate's rule functions. Rules OR
 * every `allow` that matches a request, so the control data stays closed only while no allow
 * reaches it, and a maintenance window freezes a collection only if EVERY write allow on it ANDs
 * in `migrationAllowsWrite(…)` (DESIGN.md "Living in someone else's Firebase project").
 *
 * An allow whose condition is the literal `false` grants nothing and is never a finding.
 */

/** The rule function that must guard writes (firestore.rules). */
export const WRITE_GUARD = 'migrationAllowsWrite';
const MODE_COLLECTION = MODE_DOCUMENT_PATH.split('/')[0];
const WRITE_METHODS = ['write', 'create', 'update', 'delete'];

export type RulesFindingKind =
  /** A `{name=**}` wildcard lets an allow reach the control data or the mode document. */
  | 'recursive-wildcard'
  /** A `{name}` wildcard in a collection position lets an allow reach the control data or the mode document. */
  | 'collection-wildcard'
  /** A match names a control collection and allows something. */
  | 'control-data-allowed'
  /** A write allow on a migrated collection whose condition does not AND in the guard. */
  | 'unguarded-write';

export interface RulesFinding {
  kind: RulesFindingKind;
  /** Position of the `allow` statement. */
  line: number;
  column: number;
  methods: string[];
  /** The full match path of the statement (nested match paths joined). */
  match: string;
  message: string;
}

/** A collection whose documents a migration changes: a collection path, or a collection id at any depth. */
export type GuardedCollection = { collectionPath: string } | { collectionGroup: string };

export interface RulesCheckOptions {
  /** The migrated collections (`collectionsOfTargets`, or ids from `--collections`). */
  collections: readonly GuardedCollection[];
  /** Root collections of firemigrate's control data (MIGRATION_CONTROL_COLLECTION; default `_migrations`). */
  controlCollections?: readonly string[];
}

/** The collections a set of migration targets write to, each once. */
export function collectionsOfTargets(targets: readonly MigrationTarget[]): GuardedCollection[] {
  const byKey = new Map<string, GuardedCollection>();
  for (const target of targets) {
    const collection: GuardedCollection = 'collection' in target ? { collectionPath: target.collection } : { collectionGroup: target.collectionGroup };
    byKey.set(JSON.stringify(collection), collection);
  }
  return [...byKey.values()];
}

export function describeCollection(collection: GuardedCollection): string {
  return 'collectionPath' in collection ? collection.collectionPath : `${collection.collectionGroup} (any depth)`;
}

/** Checks rules source; throws RulesSyntaxError (with line and column) when it cannot be parsed. */
export function checkRules(source: string, options: RulesCheckOptions): RulesFinding[] {
  const controlRoots = [...new Set([...(options.controlCollections ?? [DEFAULT_CONTROL_COLLECTION]), MODE_COLLECTION])];
  const findings: RulesFinding[] = [];
  visit(parseRules(source), [], (allow, path, block) => {
    if (grantsNothing(allow.condition)) return;
    const match = path.length ? `/${documentPart(path).map(segmentText).join('/')}` : '(no match)';
    const add = (kind: RulesFindingKind, message: string) =>
      findings.push({ kind, line: allow.line, column: allow.column, methods: allow.methods, match, message });
    const statement = `allow ${allow.methods.join(', ')} on ${match}`;

    const reached = controlRoots.filter((root) => matchesSomeDocument(path, controlTemplates(root)));
    if (reached.length > 0) {
      const what = reached.map((root) => (root === MODE_COLLECTION ? `the mode document ${MODE_DOCUMENT_PATH}` : `the control data ${root}/…`)).join(' and ');
      const kind = controlKind(path, reached);
      const wildcard = documentPart(path).find((segment) => segment.kind === (kind === 'recursive-wildcard' ? 'recursive' : 'wildcard'));
      const how = kind === 'control-data-allowed' ? 'opens' : `reaches, through the wildcard ${wildcard ? segmentText(wildcard) : ''},`;
      add(kind, `${statement} ${how} ${what}: no client rule may allow anything there (make the match specific, or its condition false)`);
    }

    const writes = allow.methods.filter((method) => WRITE_METHODS.includes(method));
    if (writes.length === 0) return;
    const migrated = options.collections.filter((collection) => matchesSomeDocument(path, collectionTemplates(collection, path.length)));
    if (migrated.length === 0 || isGuarded(allow.condition, block, new Set())) return;
    add(
      'unguarded-write',
      `${statement} can write ${migrated.map(describeCollection).join(', ')}, but ${allow.condition ? 'its condition does not require' : 'it has no condition, so no'} ` +
        `${WRITE_GUARD}('<collection>') (AND it into every branch): a maintenance window cannot freeze these writes`,
    );
  });
  return findings.sort((a, b) => a.line - b.line || a.column - b.column || a.kind.localeCompare(b.kind));
}

function visit(block: RulesBlock, path: PathSegment[], onAllow: (allow: AllowStatement, path: PathSegment[], block: RulesBlock) => void): void {
  const here = block.kind === 'match' ? [...path, ...block.path] : path;
  for (const allow of block.allows) onAllow(allow, here, block);
  for (const child of block.children) visit(child, here, onAllow);
}

function segmentText(segment: PathSegment): string {
  if (segment.kind === 'literal') return segment.value;
  return segment.kind === 'wildcard' ? `{${segment.name}}` : `{${segment.name}=**}`;
}

function controlKind(path: PathSegment[], reached: string[]): RulesFindingKind {
  const documents = documentPart(path);
  if (documents[0]?.kind === 'literal' && reached.includes(documents[0].value)) return 'control-data-allowed';
  return path.some((segment) => segment.kind === 'recursive') ? 'recursive-wildcard' : 'collection-wildcard';
}

/** The path below `/databases/{database}/documents`, when it starts that way. */
function documentPart(path: PathSegment[]): PathSegment[] {
  const [databases, , documents] = path;
  const isLiteral = (segment: PathSegment | undefined, value: string) => segment?.kind === 'literal' && segment.value === value;
  return isLiteral(databases, 'databases') && isLiteral(documents, 'documents') ? path.slice(3) : path;
}

// ---- could a match path match a document? -------------------------------------------------------

/** A concrete path with free segments (`undefined`: any id). */
type Template = Array<string | undefined>;

const DATABASE_PREFIX: Template = ['databases', undefined, 'documents'];

/** Documents under a control root: the root's own documents and those of its subcollections, up to MAX_TEMPLATE_DEPTH levels. */
function controlTemplates(root: string): Template[] {
  return depths(root === MODE_COLLECTION ? 0 : Infinity).map((depth) => [...DATABASE_PREFIX, root, undefined, ...Array(2 * depth).fill(undefined)]);
}

function collectionTemplates(collection: GuardedCollection, patternLength: number): Template[] {
  if ('collectionPath' in collection) return [[...DATABASE_PREFIX, ...collection.collectionPath.split('/'), undefined]];
  // Deep enough for a pattern of this length; a recursive wildcard matches any depth, so its shallow templates suffice.
  return depths(Math.ceil(patternLength / 2) + 1).map((depth) => [...DATABASE_PREFIX, ...Array(2 * depth).fill(undefined), collection.collectionGroup, undefined]);
}

const MAX_TEMPLATE_DEPTH = 8;

function depths(max: number): number[] {
  return Array.from({ length: Math.min(max, MAX_TEMPLATE_DEPTH) + 1 }, (_, depth) => depth);
}

function matchesSomeDocument(pattern: PathSegment[], templates: Template[]): boolean {
  return templates.some((template) => matches(pattern, 0, template, 0));
}

function matches(pattern: PathSegment[], p: number, template: Template, t: number): boolean {
  if (p === pattern.length) return t === template.length;
  const segment = pattern[p];
  if (segment.kind === 'recursive') {
    for (let skip = t; skip <= template.length; skip++) if (matches(pattern, p + 1, template, skip)) return true;
    return false;
  }
  if (t === template.length) return false;
  const concrete = template[t];
  if (segment.kind === 'literal' && concrete !== undefined && concrete !== segment.value) return false;
  return matches(pattern, p + 1, template, t + 1);
}

// ---- is a condition guarded? --------------------------------------------------------------------

function isPunct(token: Token | undefined, value: string): boolean {
  return token?.type === 'punct' && token.value === value;
}

function grantsNothing(condition: Token[] | undefined): boolean {
  const tokens = condition && stripParens(condition);
  return tokens?.length === 1 && tokens[0].type === 'ident' && tokens[0].value === 'false';
}

/** Index just past the bracket group opening at `start`. */
function closeOf(tokens: Token[], start: number): number {
  let depth = 0;
  for (let i = start; i < tokens.length; i++) {
    if (tokens[i].type !== 'punct') continue;
    if ('([{'.includes(tokens[i].value)) depth++;
    else if (')]}'.includes(tokens[i].value) && --depth === 0) return i + 1;
  }
  return tokens.length;
}

function stripParens(tokens: Token[]): Token[] {
  let inner = tokens;
  while (inner.length >= 2 && isPunct(inner[0], '(') && closeOf(inner, 0) === inner.length) inner = inner.slice(1, -1);
  return inner;
}

/** Indexes of `value` tokens outside brackets. */
function topLevel(tokens: Token[], value: string): number[] {
  const found: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i].type === 'punct' && '([{'.includes(tokens[i].value)) i = closeOf(tokens, i) - 1;
    else if (isPunct(tokens[i], value)) found.push(i);
  }
  return found;
}

function splitAt(tokens: Token[], positions: number[]): Token[][] {
  const parts: Token[][] = [];
  let start = 0;
  for (const position of positions) {
    parts.push(tokens.slice(start, position));
    start = position + 1;
  }
  parts.push(tokens.slice(start));
  return parts;
}

/**
 * Whether every way the condition can be true passes through the guard: `false`; a call of
 * the guard; `a && b` with a guarded conjunct; `a || b` with every disjunct guarded; `c ? a : b`
 * with both branches guarded; or a call of a rules function whose `return` is guarded.
 */
function isGuarded(condition: Token[] | undefined, scope: RulesBlock, visiting: Set<FunctionDeclaration>): boolean {
  if (!condition) return false;
  const tokens = stripParens(condition);
  if (grantsNothing(tokens)) return true;

  const question = topLevel(tokens, '?')[0];
  if (question !== undefined) {
    const colon = ternaryColon(tokens, question);
    if (colon === undefined) return false;
    return isGuarded(tokens.slice(question + 1, colon), scope, visiting) && isGuarded(tokens.slice(colon + 1), scope, visiting);
  }
  const ors = topLevel(tokens, '||');
  if (ors.length > 0) return splitAt(tokens, ors).every((part) => isGuarded(part, scope, visiting));
  const ands = topLevel(tokens, '&&');
  if (ands.length > 0) return splitAt(tokens, ands).some((part) => isGuarded(part, scope, visiting));

  // A single call: `name(...)`, nothing before or after it.
  if (tokens.length < 3 || tokens[0].type !== 'ident' || !isPunct(tokens[1], '(') || closeOf(tokens, 1) !== tokens.length) return false;
  const name = tokens[0].value;
  if (name === WRITE_GUARD) return true;
  const declaration = resolveFunction(name, scope);
  if (!declaration || visiting.has(declaration)) return false;
  return isGuarded(declaration.returns, declaration.scope, new Set([...visiting, declaration]));
}

/** The `:` that pairs with the `?` at `question`, skipping nested conditionals. */
function ternaryColon(tokens: Token[], question: number): number | undefined {
  let nested = 0;
  for (const i of [...topLevel(tokens, '?'), ...topLevel(tokens, ':')].filter((at) => at > question).sort((a, b) => a - b)) {
    if (isPunct(tokens[i], '?')) nested++;
    else if (nested === 0) return i;
    else nested--;
  }
  return undefined;
}

/** The function `name` as seen from `scope`: declared there or in an enclosing block. */
function resolveFunction(name: string, scope: RulesBlock | undefined): FunctionDeclaration | undefined {
  for (let block = scope; block; block = block.parent) {
    const found = block.functions.find((declaration) => declaration.name === name);
    if (found) return found;
  }
  return undefined;
}
