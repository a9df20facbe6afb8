/**
 * Session keys: issued by the control port, kept in memory only, usable once, until they
 * expire. A key is 32 random bytes (256 bits, base64url), so it is found by a plain map lookup:
 * the time a lookup takes can only tell an attacker whether a string they already hold is a
 * key, never bring them closer to one (doc/security.md#session-keys).
 */
import { randomBytes } from 'node:crypto';

/** What a remote-access key opens: a TCP stream to `target` (host:port) performed by node `to`. */
export interface RemoteAccessBinding {
  kind: 'remote-access';
  to: string;
  target: string;
}

/** A rendezvous key: the two parties that present it are spliced. */
export interface RendezvousBinding {
  kind: 'rendezvous';
}

export type KeyBinding = RemoteAccessBinding | RendezvousBinding;

interface Entry {
  binding: KeyBinding;
  expires: number;
}

/** Keys kept at most (issued and not yet used or expired); issuing more fails. */
export const MAX_KEYS = 10_000;

/** Base64url of 32 bytes. */
const KEY_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export class SessionKeys {
  private readonly keys = new Map<string, Entry>();

  /** A new key for `binding`, valid for `ttlMs`; undefined when MAX_KEYS are outstanding. */
  issue(binding: KeyBinding, ttlMs: number): { key: string; expires: Date } | undefined {
    this.sweep();
    if (this.keys.size >= MAX_KEYS) return undefined;
    const key = randomBytes(32).toString('base64url');
    const expires = Date.now() + ttlMs;
    this.keys.set(key, { binding, expires });
    return { key, expires: new Date(expires) };
  }

  /**
   * Takes a key for one use: its binding, or why not. A key of the other kind, or one bound to
   * another endpoint, is consumed all the same: a key presented wrongly is a key that leaked.
   */
  take(key: string, kind: KeyBinding['kind']): KeyBinding | string {
    if (!KEY_SHAPE.test(key)) return 'not a session key';
    const entry = this.keys.get(key);
    if (!entry) return 'unknown or already used key';
    this.keys.delete(key);
    if (entry.expires <= Date.now()) return 'expired key';
    if (entry.binding.kind !== kind) return `a ${entry.binding.kind} key presented for ${kind}`;
    return entry.binding;
  }

  /** Keys outstanding (for the state page). */
  get size(): number {
    this.sweep();
    return this.keys.size;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.keys) if (entry.expires <= now) this.keys.delete(key);
  }
}
