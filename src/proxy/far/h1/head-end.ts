/**
 * Where an answer's head ends, so that llhttp reads no further than the head when the
 * connection reads the body itself. llhttp in strict mode (no lenient flags: CR LF line ends
 * only, no folded lines) ends a head at its first CR LF CR LF, and nowhere else; a head may
 * arrive over several reads, so the search carries how much of a CR LF CR LF the last read
 * ended with.
 */

const END = Buffer.from('\r\n\r\n', 'latin1');
const CR = 0x0d;
const LF = 0x0a;

/**
 * The index just past the first CR LF CR LF in `data` from `from` on, counting the `seen`
 * bytes of one that came before `from` (0–3, as `seenAtEnd` gives), or -1 when there is none.
 */
export function headEnd(data: Buffer, from: number, seen: number): number {
  // A CR LF CR LF begun in the last read, finished in this one.
  for (let k = seen, i = from; k > 0 && i < data.length && data[i] === END[k]; i++) {
    if (++k === 4) return i + 1;
  }
  const at = data.indexOf(END, from);
  return at < 0 ? -1 : at + 4;
}

/**
 * How much of a CR LF CR LF the bytes up to the end of `data` end with (0–3), where
 * `headEnd(data, from, seen)` found none; `seen` as there.
 */
export function seenAtEnd(data: Buffer, from: number, seen: number): number {
  // The longest end that begins a CR LF CR LF is at most 3 bytes long: the last 3 bytes say
  // it alone, fewer need what came before.
  let k = data.length - from >= 3 ? 0 : seen;
  for (let i = Math.max(from, data.length - 3); i < data.length; i++) {
    const b = data[i];
    if (b === CR) k = k === 2 ? 3 : 1;
    else if (b === LF && (k === 1 || k === 3)) k++;
    else k = 0;
  }
  return k;
}
