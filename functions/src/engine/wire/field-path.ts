/**
 * Field paths of update masks. Segments are literal field names: a field named `a.b` is the one
 * segment `a.b` and travels as `` `a.b` ``, never as the nested path `a` → `b` (DESIGN.md G4).
 * Firestore's grammar: a segment that is not a simple identifier is quoted in backticks, with `\`
 * and `` ` `` escaped by a backslash.
 */
const SIMPLE_SEGMENT = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

export function escapeSegment(segment: string): string {
  if (SIMPLE_SEGMENT.test(segment)) return segment;
  return '`' + segment.replace(/[\\`]/g, '\\$&') + '`';
}

export function formatFieldPath(segments: readonly string[]): string {
  if (segments.length === 0) throw new Error('a field path needs at least one segment');
  return segments.map(escapeSegment).join('.');
}

/** The inverse of `formatFieldPath`; throws naming the path when it is malformed. */
export function parseFieldPath(path: string): string[] {
  if (!path.includes('`')) {
    const simple = path.split('.');
    if (simple.every((segment) => SIMPLE_SEGMENT.test(segment))) return simple;
  }
  const segments: string[] = [];
  let i = 0;
  const malformed = (why: string): never => {
    throw new Error(`malformed field path ${JSON.stringify(path)}: ${why}`);
  };
  while (i <= path.length) {
    let segment = '';
    if (path[i] === '`') {
      i++;
      for (;;) {
        if (i >= path.length) malformed('unterminated backtick');
        const c = path[i];
        if (c === '\\') {
          if (i + 1 >= path.length) malformed('dangling backslash');
          segment += path[i + 1];
          i += 2;
        } else if (c === '`') {
          i++;
          break;
        } else {
          segment += c;
          i++;
        }
      }
      if (segment.length === 0) malformed('empty segment');
    } else {
      const end = path.indexOf('.', i);
      segment = path.slice(i, end === -1 ? path.length : end);
      if (!SIMPLE_SEGMENT.test(segment)) malformed(`segment ${JSON.stringify(segment)} must be quoted in backticks`);
      i += segment.length;
    }
    segments.push(segment);
    if (i === path.length) return segments;
    if (path[i] !== '.') malformed(`expected "." at offset ${i}`);
    i++;
    if (i === path.length) malformed('trailing "."');
  }
  return segments;
}
