/**
 * Byte-level mutations of a fuzz case: set, insert or delete bytes, duplicate a line, turn a
 * CRLF into a bare LF, cut the case short. Parts marked fixed (the X-Fuzz-Case marker lines)
 * are never touched.
 */
import fc from 'fast-check';

export interface Mutation {
  op: 'set' | 'insert' | 'delete' | 'dupline' | 'lf' | 'cut';
  at: number;
  len: number;
  byte: number;
}

/** A run of bytes; `fixed` ones are never mutated. */
export interface Part {
  text: string;
  fixed: boolean;
}

export const MUTATION: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('set', 'insert', 'delete', 'dupline', 'lf', 'cut'),
  at: fc.nat(),
  len: fc.integer({ min: 1, max: 8 }),
  byte: fc.constantFrom(0, 9, 10, 13, 32, 0x7f, 0x80, 0xff, 0x3a, 0x61, 0x22, 0x2c),
});

/** Most cases unmutated; one in five with one to three mutations. */
export const SOME_MUTATIONS: fc.Arbitrary<Mutation[]> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Mutation[]>([]) },
  { weight: 1, arbitrary: fc.array(MUTATION, { minLength: 1, maxLength: 3 }) },
);

/** Applies byte-level mutations to the parts that are not fixed. */
export function mutate(parts: Part[], muts: Mutation[]): string {
  let out = parts.map((p) => ({ ...p }));
  for (const m of muts) {
    const free = out.filter((p) => !p.fixed && p.text.length > 0);
    if (m.op === 'cut') {
      // Cuts the case short: everything from a point in a free part on is dropped.
      const total = out.reduce((n, p) => n + p.text.length, 0);
      const at = total === 0 ? 0 : m.at % total;
      let seen = 0;
      const kept: Part[] = [];
      for (const p of out) {
        if (seen + p.text.length <= at) kept.push(p);
        else if (!p.fixed) kept.push({ ...p, text: p.text.slice(0, at - seen) });
        else break;
        seen += p.text.length;
        if (seen >= at) break;
      }
      out = kept;
      continue;
    }
    if (free.length === 0) continue;
    const size = free.reduce((n, p) => n + p.text.length, 0);
    let at = m.at % size;
    const part = free.find((p) => {
      if (at < p.text.length) return true;
      at -= p.text.length;
      return false;
    })!;
    const t = part.text;
    const byte = String.fromCharCode(m.byte);
    switch (m.op) {
      case 'set': part.text = t.slice(0, at) + byte + t.slice(at + 1); break;
      case 'insert': part.text = t.slice(0, at) + byte.repeat(m.len) + t.slice(at); break;
      case 'delete': part.text = t.slice(0, at) + t.slice(at + m.len); break;
      case 'dupline': {
        const start = t.lastIndexOf('\n', at) + 1;
        const end = t.indexOf('\n', at);
        const line = t.slice(start, end < 0 ? t.length : end + 1);
        part.text = t.slice(0, start) + line + t.slice(start);
        break;
      }
      case 'lf': {
        const cr = t.indexOf('\r\n', at);
        if (cr >= 0) part.text = t.slice(0, cr) + t.slice(cr + 1);
        break;
      }
    }
  }
  return out.map((p) => p.text).join('');
}
