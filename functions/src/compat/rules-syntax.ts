/**
 * Just enough of the Firestore security rules language to check a rules file: a tokenizer that
 * knows comments, strings and match paths, and a parser for the block structure (`service`,
 * nested `match` blocks, `allow` statements, `function` declarations). Expressions are kept as
 * token lists; the checks read the few shapes they care about (`&&`, `||`, `?:`, calls).
 */

export type TokenType = 'ident' | 'number' | 'string' | 'punct' | 'path' | 'eof';

export interface Token {
  type: TokenType;
  value: string;
  /** 1-based position of the token's first character. */
  line: number;
  column: number;
}

export type PathSegment =
  | { kind: 'literal'; value: string }
  /** `{name}`: exactly one segment. */
  | { kind: 'wildcard'; name: string }
  /** `{name=**}`: zero or more segments. */
  | { kind: 'recursive'; name: string };

export interface AllowStatement {
  methods: string[];
  /** The expression after `if`; undefined when the statement has none (it allows unconditionally). */
  condition: Token[] | undefined;
  line: number;
  column: number;
}

export interface FunctionDeclaration {
  name: string;
  params: string[];
  /** The expression of the body's `return`. */
  returns: Token[] | undefined;
  /** The block the function is declared in (its scope). */
  scope: RulesBlock;
  line: number;
}

export interface RulesBlock {
  kind: 'file' | 'service' | 'match';
  /** The `match` path; empty for the file and service blocks. */
  path: PathSegment[];
  /** The path as written, e.g. `/trades/{tradeId}`. */
  pathText: string;
  line: number;
  parent: RulesBlock | undefined;
  functions: FunctionDeclaration[];
  allows: AllowStatement[];
  /** Nested blocks: the service block of the file, the match blocks of a service or match. */
  children: RulesBlock[];
}

export class RulesSyntaxError extends Error {
  override readonly name = 'RulesSyntaxError';
  constructor(
    readonly line: number,
    readonly column: number,
    readonly problem: string,
  ) {
    super(`line ${line}, column ${column}: ${problem}`);
  }
}

export const RULE_METHODS = ['read', 'write', 'get', 'list', 'create', 'update', 'delete'] as const;

const TWO_CHAR_PUNCT = new Set(['&&', '||', '==', '!=', '<=', '>=']);
const ONE_CHAR_PUNCT = new Set([...'{}()[];:,.=!<>?+-*/%$&|']);

/** The tokens of a rules file, comments and whitespace dropped, ending with an `eof` token. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const column = (at: number) => at - lineStart + 1;
  const fail = (at: number, problem: string): never => {
    throw new RulesSyntaxError(line, column(at), problem);
  };

  const skipSpaceAndComments = () => {
    while (i < source.length) {
      const ch = source[i];
      if (ch === '\n') {
        i++;
        line++;
        lineStart = i;
      } else if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\f') {
        i++;
      } else if (source.startsWith('//', i)) {
        while (i < source.length && source[i] !== '\n') i++;
      } else if (source.startsWith('/*', i)) {
        const startLine = line;
        const startColumn = column(i);
        i += 2;
        while (i < source.length && !source.startsWith('*/', i)) {
          if (source[i] === '\n') {
            line++;
            lineStart = i + 1;
          }
          i++;
        }
        if (i >= source.length) throw new RulesSyntaxError(startLine, startColumn, 'unterminated /* comment');
        i += 2;
      } else {
        return;
      }
    }
  };

  // A match path: `/seg/{var}/{rest=**}`, read segment by segment so that the `{` opening the
  // block is not taken for a wildcard.
  const readPath = () => {
    const start = i;
    if (source[i] !== '/') fail(i, `expected a path starting with "/" after match, found ${JSON.stringify(source[i] ?? 'end of file')}`);
    while (source[i] === '/') {
      i++;
      if (source[i] === '{') {
        const close = source.indexOf('}', i);
        const newline = source.indexOf('\n', i);
        if (close < 0 || (newline >= 0 && newline < close)) fail(i, 'unterminated wildcard in a match path');
        i = close + 1;
      } else {
        const segmentStart = i;
        while (i < source.length && !/[\s/{]/.test(source[i])) i++;
        if (i === segmentStart) fail(i, 'empty segment in a match path');
      }
    }
    tokens.push({ type: 'path', value: source.slice(start, i), line, column: column(start) });
  };

  while (true) {
    skipSpaceAndComments();
    if (i >= source.length) break;
    const start = i;
    const ch = source[i];
    if (/[A-Za-z_]/.test(ch)) {
      while (i < source.length && /[A-Za-z0-9_]/.test(source[i])) i++;
      const value = source.slice(start, i);
      tokens.push({ type: 'ident', value, line, column: column(start) });
      if (value === 'match') {
        skipSpaceAndComments();
        readPath();
      }
    } else if (/[0-9]/.test(ch)) {
      while (i < source.length && /[0-9.eE]/.test(source[i])) i++;
      tokens.push({ type: 'number', value: source.slice(start, i), line, column: column(start) });
    } else if (ch === "'" || ch === '"') {
      i++;
      while (i < source.length && source[i] !== ch) {
        if (source[i] === '\n') fail(start, 'unterminated string');
        i += source[i] === '\\' ? 2 : 1;
      }
      if (i >= source.length) fail(start, 'unterminated string');
      i++;
      tokens.push({ type: 'string', value: source.slice(start, i), line, column: column(start) });
    } else if (TWO_CHAR_PUNCT.has(source.slice(i, i + 2))) {
      i += 2;
      tokens.push({ type: 'punct', value: source.slice(start, i), line, column: column(start) });
    } else if (ONE_CHAR_PUNCT.has(ch)) {
      i++;
      tokens.push({ type: 'punct', value: ch, line, column: column(start) });
    } else {
      fail(i, `unexpected character ${JSON.stringify(ch)}`);
    }
  }
  tokens.push({ type: 'eof', value: '', line, column: column(i) });
  return tokens;
}

export function parsePath(text: string, at: Token): PathSegment[] {
  return text
    .split('/')
    .slice(1)
    .map((segment): PathSegment => {
      const wildcard = /^\{([A-Za-z_][A-Za-z0-9_]*)(=\*\*)?\}$/.exec(segment);
      if (wildcard) return wildcard[2] ? { kind: 'recursive', name: wildcard[1] } : { kind: 'wildcard', name: wildcard[1] };
      if (/[{}]/.test(segment)) throw new RulesSyntaxError(at.line, at.column, `invalid path segment ${JSON.stringify(segment)} in match ${text}`);
      return { kind: 'literal', value: segment };
    });
}

const OPENERS: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
const CLOSERS = new Set([')', ']', '}']);

/** Parses a rules file into its block tree (the `file` block holds the `service` block). */
export function parseRules(source: string): RulesBlock {
  const tokens = tokenize(source);
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const fail = (token: Token, problem: string): never => {
    throw new RulesSyntaxError(token.line, token.column, problem);
  };
  const describe = (token: Token) => (token.type === 'eof' ? 'end of file' : JSON.stringify(token.value));
  const expect = (value: string, what: string): Token => {
    const token = next();
    if (token.type === 'eof' || token.value !== value || token.type === 'string') fail(token, `expected "${value}" ${what}, found ${describe(token)}`);
    return token;
  };

  /**
   * The tokens of an expression, up to (not including) a `;` outside brackets or the `}` that
   * closes the enclosing block. Brackets must balance.
   */
  const expression = (): Token[] => {
    const collected: Token[] = [];
    const open: Token[] = [];
    while (true) {
      const token = peek();
      if (token.type === 'eof') {
        return open.length ? fail(open[open.length - 1], `unclosed "${open[open.length - 1].value}"`) : collected;
      }
      if (token.type === 'punct') {
        if (open.length === 0 && (token.value === ';' || token.value === '}')) return collected;
        if (OPENERS[token.value]) open.push(token);
        else if (CLOSERS.has(token.value)) {
          const opener = open.pop();
          if (!opener) fail(token, `"${token.value}" closes nothing`);
          else if (OPENERS[opener.value] !== token.value) {
            fail(token, `expected "${OPENERS[opener.value]}" to close the "${opener.value}" of line ${opener.line}, column ${opener.column}, found "${token.value}"`);
          }
        }
      }
      collected.push(next());
    }
  };

  const parseAllow = (block: RulesBlock, keyword: Token) => {
    const methods: string[] = [];
    while (true) {
      const method = next();
      if (method.type !== 'ident' || !(RULE_METHODS as readonly string[]).includes(method.value)) {
        fail(method, `expected a method (${RULE_METHODS.join(', ')}) after allow, found ${describe(method)}`);
      }
      methods.push(method.value);
      if (peek().value === ',' && peek().type === 'punct') {
        next();
        continue;
      }
      break;
    }
    let condition: Token[] | undefined;
    if (peek().type === 'punct' && peek().value === ':') {
      next();
      expect('if', 'after "allow …:"');
      condition = expression();
      if (condition.length === 0) fail(peek(), 'expected a condition after "if"');
    }
    if (peek().type === 'punct' && peek().value === ';') next();
    else if (!(peek().type === 'punct' && peek().value === '}')) fail(peek(), `expected ";" after the allow statement, found ${describe(peek())}`);
    block.allows.push({ methods, condition, line: keyword.line, column: keyword.column });
  };

  const parseFunction = (block: RulesBlock, keyword: Token) => {
    const name = next();
    if (name.type !== 'ident') fail(name, `expected a function name, found ${describe(name)}`);
    expect('(', `after function ${name.value}`);
    const params: string[] = [];
    while (!(peek().type === 'punct' && peek().value === ')')) {
      const param = next();
      if (param.type !== 'ident') fail(param, `expected a parameter name of function ${name.value}, found ${describe(param)}`);
      params.push(param.value);
      if (peek().type === 'punct' && peek().value === ',') next();
    }
    next();
    expect('{', `to open the body of function ${name.value}`);
    let returns: Token[] | undefined;
    while (!(peek().type === 'punct' && peek().value === '}')) {
      const token = next();
      if (token.type === 'eof') fail(keyword, `function ${name.value} is not closed`);
      if (token.type === 'ident' && token.value === 'return') returns = expression();
      else if (token.type === 'ident' && token.value === 'let') expression();
      else if (!(token.type === 'punct' && token.value === ';')) fail(token, `expected "let" or "return" in function ${name.value}, found ${describe(token)}`);
    }
    next();
    block.functions.push({ name: name.value, params, returns, scope: block, line: keyword.line });
  };

  const parseBody = (block: RulesBlock) => {
    while (true) {
      const token = next();
      if (token.type === 'eof') {
        if (block.kind === 'file') return;
        return fail(token, `the ${block.kind === 'match' ? `match ${block.pathText}` : 'service'} block opened on line ${block.line} is not closed`);
      }
      if (token.type === 'punct' && token.value === '}') {
        if (block.kind === 'file') fail(token, 'unexpected "}"');
        return;
      }
      if (token.type === 'punct' && token.value === ';') continue;
      if (token.type !== 'ident') fail(token, `unexpected ${describe(token)}`);
      switch (token.value) {
        case 'rules_version':
          expect('=', 'after rules_version');
          if (next().type !== 'string') fail(tokens[i - 1], 'expected a string after "rules_version ="');
          break;
        case 'service': {
          let name = '';
          while (!(peek().type === 'punct' && peek().value === '{')) {
            if (peek().type === 'eof') fail(token, 'the service declaration has no block');
            name += next().value;
          }
          next();
          const child = newBlock('service', [], name, token.line, block);
          parseBody(child);
          break;
        }
        case 'match': {
          const pathToken = next();
          const child = newBlock('match', parsePath(pathToken.value, pathToken), pathToken.value, token.line, block);
          expect('{', `after match ${pathToken.value}`);
          parseBody(child);
          break;
        }
        case 'allow':
          parseAllow(block, token);
          break;
        case 'function':
          parseFunction(block, token);
          break;
        default:
          fail(token, `unexpected ${describe(token)}: expected match, allow or function`);
      }
    }
  };

  const root = newBlock('file', [], '', 1, undefined);
  parseBody(root);
  return root;
}

function newBlock(kind: RulesBlock['kind'], path: PathSegment[], pathText: string, line: number, parent: RulesBlock | undefined): RulesBlock {
  const block: RulesBlock = { kind, path, pathText, line, parent, functions: [], allows: [], children: [] };
  parent?.children.push(block);
  return block;
}
