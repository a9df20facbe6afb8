/**
 * Where an origin socket's reads go. Node's own reading allocates a buffer per read and, when
 * the reader pauses, reads once more into the socket's buffer before it stops: with a thousand
 * downloads waiting for a full tunnel that was 64 KiB per stream, held for nothing. An origin
 * connection reads with `onread` instead (net.connect's option): pausing the socket stops it at
 * once, and the connection says where each next read goes:
 *
 * - a body it counts out itself (Content-Length, close-delimited), while it is read: a buffer
 *   of its own, handed on as views of the read, uncopied (as before); paused, it keeps one only
 *   while few connections wait (PAUSED_OWN_BUFFERS);
 * - anything else (a head, a chunked body llhttp reads, an idle connection, a paused one past
 *   those): a buffer every connection shares; llhttp copies what it keeps, and a body piece read
 *   there is copied out. So a thousand connections that wait hold no buffer of their own.
 */

/** A body the connection counts out is read in pieces of up to this much (what Node reads at once). */
export const BODY_READ_BYTES = 64 * 1024;
/**
 * Heads and idle connections read into a smaller shared buffer: the body bytes that come with a
 * head are copied, and a thousand answers arriving at once hold at most this much each.
 */
export const HEAD_READ_BYTES = 4 * 1024;
/** A body piece smaller than this is copied out of its read buffer, which then takes the next read. */
export const COPY_BELOW = 16 * 1024;

/**
 * Paused connections that may keep a read buffer of their own (so their next read is a full one,
 * uncopied), in all: a few streams waiting in turn for a busy tunnel read as before; past this, a
 * paused connection's next read is a small one into the shared buffer (reads.ts's point: a
 * thousand waiting streams hold nothing).
 */
export const PAUSED_OWN_BUFFERS = 64;
let pausedOwn = 0;

/** A paused connection takes one of the PAUSED_OWN_BUFFERS; false when none is left. */
export function takePausedBuffer(): boolean {
  if (pausedOwn >= PAUSED_OWN_BUFFERS) return false;
  pausedOwn++;
  return true;
}

/** A paused connection's own buffer was read into, or the connection closed. */
export function givePausedBuffer(): void {
  pausedOwn--;
}

let sharedHead: Buffer | undefined;
let sharedBody: Buffer | undefined;

/** The buffer shared by heads and idle connections (never kept by anyone past a read). */
export function sharedHeadBuffer(): Buffer {
  return sharedHead ??= Buffer.allocUnsafeSlow(HEAD_READ_BYTES);
}

/** The buffer shared by bodies llhttp reads and by paused connections' next read. */
export function sharedBodyBuffer(): Buffer {
  return sharedBody ??= Buffer.allocUnsafeSlow(BODY_READ_BYTES);
}

/** Whether `buf` is (part of) one of the shared buffers, whose bytes must be copied to be kept. */
export function isShared(buf: Uint8Array): boolean {
  return buf.buffer === sharedHead?.buffer || buf.buffer === sharedBody?.buffer;
}
