/**
 * The auth hook (`west.authHook`, mproxy-style): an HTTP endpoint west asks, with a JSON POST,
 * before a tunnel is accepted, a stream performed or a session key used. Its answer is
 * remembered for a short time (allows for `cache`, denies for `denyCache`), the same question
 * asked while one is on its way waits for that one, and a hook that does not answer in time,
 * cannot be reached or answers nonsense refuses the event (fail closed) unless `failOpen`.
 * Every decision is logged as `auth.decision` (doc/remote-access.md#the-auth-hook).
 */
import type { AuthHookConfig } from '../config/types.js';
import { isRecord } from '../json.js';
import type { Logger } from '../log.js';

/** What the hook is asked: one of three events, with the node that asks. */
export type HookQuestion =
  | { event: 'tunnel'; node: string; name: string; address: string; certSubject?: string }
  | { event: 'stream'; node: string; from: string; to: string; kind: 'http' | 'tcp'; method?: string; path?: string; target: string }
  | { event: 'session'; node: string; kind: 'remote-access' | 'rendezvous'; keyId: string; address: string; to?: string; target?: string };

/** The outcome: allowed or not; `unavailable` when the hook could not be asked (and failOpen is off). */
export interface HookDecision {
  allow: boolean;
  reason: string;
  unavailable?: true;
}

/** A decision now (cached) or once the hook answers. */
export type HookAnswer = HookDecision | Promise<HookDecision>;

/** Questions remembered at most; the oldest goes first when full. */
const MAX_CACHED = 10_000;
/** Bytes of a hook's answer read at most: it is a small JSON object. */
const MAX_ANSWER = 16 * 1024;

interface Cached {
  decision: HookDecision;
  until: number;
}

export class AuthHook {
  private config: AuthHookConfig;
  private readonly log: Logger;
  private readonly cache = new Map<string, Cached>();
  private readonly asking = new Map<string, Promise<HookDecision>>();
  /** Questions that went to the hook (not answered from the cache): for tests and metrics. */
  asked = 0;

  constructor(config: AuthHookConfig, log: Logger) {
    this.config = config;
    this.log = log;
  }

  /** A reload's settings; what is cached was answered under the old URL, so it goes. */
  setConfig(config: AuthHookConfig): void {
    if (config.url !== this.config.url) this.cache.clear();
    this.config = config;
  }

  /**
   * Asks about one event. A cached answer comes back at once (no promise, no round trip);
   * otherwise the promise settles with the hook's answer, or a refusal after `timeout`.
   * Never rejects.
   */
  ask(q: HookQuestion): HookAnswer {
    const key = JSON.stringify(q);
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) {
      this.logDecision(q, hit.decision, 'cache', 0);
      return hit.decision;
    }
    if (hit) this.cache.delete(key);
    const pending = this.asking.get(key);
    if (pending) return pending;
    const started = now;
    const answer = this.post(q).then((decision) => {
      this.asking.delete(key);
      // One-time session keys are never asked about twice; what failed is asked again next time.
      if (!decision.unavailable && q.event !== 'session') this.remember(key, decision);
      this.logDecision(q, decision, 'hook', Date.now() - started);
      return decision;
    });
    this.asking.set(key, answer);
    return answer;
  }

  private remember(key: string, decision: HookDecision): void {
    const ttl = decision.allow ? this.config.cacheMs : this.config.denyCacheMs;
    if (ttl <= 0) return;
    if (this.cache.size >= MAX_CACHED) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, { decision, until: Date.now() + ttl });
  }

  private async post(q: HookQuestion): Promise<HookDecision> {
    const { url, timeoutMs, failOpen } = this.config;
    let problem: string;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(q),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await readAtMost(res, MAX_ANSWER);
      const body: unknown = text === undefined ? undefined : parseJson(text);
      if (res.status === 200 && isRecord(body) && typeof body.allow === 'boolean') {
        const reason = typeof body.reason === 'string' ? body.reason.slice(0, 200) : '';
        return { allow: body.allow, reason: reason || (body.allow ? 'allowed by the auth hook' : 'denied by the auth hook') };
      }
      problem = `the auth hook answered ${res.status} without { "allow": true|false }`;
    } catch (err) {
      const e = err as Error;
      problem = e.name === 'TimeoutError'
        ? `the auth hook did not answer within ${timeoutMs} ms (west.authHook.timeout)`
        : `the auth hook could not be asked: ${causeOf(e)}`;
    }
    this.log.warn('auth.hook_failed', { about: q.event, url, error: problem, failOpen });
    return failOpen ? { allow: true, reason: `${problem}; let through (west.authHook.failOpen)` } : { allow: false, reason: problem, unavailable: true };
  }

  private logDecision(q: HookQuestion, d: HookDecision, source: 'hook' | 'cache', ms: number): void {
    // `event` names the log line's event: the question's goes in `about`.
    const { node: _asker, event, ...fields } = q;
    this.log.info('auth.decision', {
      about: event, ...fields, allow: d.allow, reason: d.reason, source, ms, ...(d.unavailable ? { unavailable: true } : {}),
    });
  }
}

/** The body as text, or undefined once it is past `max` bytes (the rest is not read: the answer is dropped). */
async function readAtMost(res: Response, max: number): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early cancels the body.
  for await (const value of res.body as AsyncIterable<Uint8Array>) {
    size += value.length;
    if (size > max) return undefined;
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** fetch's "fetch failed" hides the socket error in `cause`. */
function causeOf(e: Error): string {
  const cause = e.cause;
  if (cause instanceof Error) return (cause as NodeJS.ErrnoException).code ?? cause.message;
  return e.message;
}

/** The first characters of a key, enough to tell keys apart in a log, too few to use one. */
export function keyId(key: string): string {
  return `${key.slice(0, 6)}…`;
}
