/**
 * Rendezvous (nymea-style): the two WebSocket clients that present the same one-time key are
 * paired and spliced (bridge.ts). The first waits at most `pairWait` for the second and is then
 * closed with 4410; a third presenter finds the key gone. Parties waiting are capped in total
 * and per client address, so a flood of waiting sockets cannot hold a node's memory.
 */
import type { WebSocket } from 'ws';
import { CLOSE } from '../errors.js';
import type { Logger } from '../log.js';
import { spliceWebSockets } from './bridge.js';
import { keyId } from './hook.js';
import type { SessionKeys } from './keys.js';

export interface RendezvousLimits {
  pairWaitMs: number;
  maxWaiting: number;
  maxWaitingPerAddress: number;
  /** Bytes queued per direction before the sender is paused. */
  highWater: number;
}

/** One key's pairing, from the first presenter until the pair is spliced or given up. */
interface Pairing {
  key: string;
  address: string;
  first?: WebSocket;
  second?: WebSocket;
  /** A second presenter is being admitted (hook, upgrade): a third one is refused meanwhile. */
  secondClaimed: boolean;
  timer: NodeJS.Timeout;
  over: boolean;
}

/** Which side of a pairing a presenter is, or why it is refused. */
export type Presence =
  | { role: 'first' | 'second'; pairing: Pairing }
  | { refused: string; full?: true };

export class Rendezvous {
  private readonly waiting = new Map<string, Pairing>();
  private readonly perAddress = new Map<string, number>();
  private readonly keys: SessionKeys;
  private readonly log: Logger;
  limits: RendezvousLimits;

  constructor(keys: SessionKeys, limits: RendezvousLimits, log: Logger) {
    this.keys = keys;
    this.limits = limits;
    this.log = log;
  }

  /** Parties waiting now (for the state and the tests). */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /**
   * A client presents `key` (before its upgrade): the first presenter takes the key out of the
   * store and starts the wait; the second claims the pairing; anyone else is refused.
   */
  present(key: string, address: string): Presence {
    const pairing = this.waiting.get(key);
    if (pairing) {
      if (pairing.secondClaimed || pairing.over) return { refused: 'the key is already paired' };
      pairing.secondClaimed = true;
      return { role: 'second', pairing };
    }
    const { maxWaiting, maxWaitingPerAddress, pairWaitMs } = this.limits;
    if (this.waiting.size >= maxWaiting) return { refused: `${maxWaiting} parties are waiting (west.access.maxWaiting)`, full: true };
    if ((this.perAddress.get(address) ?? 0) >= maxWaitingPerAddress) {
      return { refused: `${maxWaitingPerAddress} parties from ${address} are waiting (west.access.maxWaitingPerAddress)`, full: true };
    }
    const taken = this.keys.take(key, 'rendezvous');
    if (typeof taken === 'string') return { refused: taken };
    const fresh: Pairing = {
      key, address, secondClaimed: false, over: false,
      timer: setTimeout(() => this.unpaired(fresh), pairWaitMs),
    };
    this.waiting.set(key, fresh);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    return { role: 'first', pairing: fresh };
  }

  /** A presenter was refused after `present` (the hook said no, the upgrade failed). */
  withdraw(p: { role: 'first' | 'second'; pairing: Pairing }): void {
    if (p.role === 'second') p.pairing.secondClaimed = false;
    else this.end(p.pairing, 'the first party was refused');
  }

  /** A presenter's WebSocket is open: wait, or splice the pair. */
  joined(p: { role: 'first' | 'second'; pairing: Pairing }, ws: WebSocket): void {
    const pairing = p.pairing;
    if (pairing.over) {
      ws.close(CLOSE.unpaired, 'no second party joined in time');
      return;
    }
    if (p.role === 'first') {
      pairing.first = ws;
      // A first party that leaves while waiting frees its place at once.
      ws.once('close', () => { if (!pairing.second) this.end(pairing, 'the first party left'); });
    } else {
      pairing.second = ws;
      ws.once('close', () => {
        if (pairing.first) return;
        pairing.second = undefined;
        pairing.secondClaimed = false;
      });
    }
    const { first, second } = pairing;
    if (!first || !second) return;
    this.end(pairing, 'paired');
    const id = keyId(pairing.key);
    this.log.info('session.opened', { kind: 'rendezvous', keyId: id, first: pairing.address });
    spliceWebSockets(first, second, this.limits.highWater, (counts, why) => {
      this.log.info('session.closed', { kind: 'rendezvous', keyId: id, up: counts.up, down: counts.down, reason: why });
    });
  }

  /** Closes every waiting party (the node stops). */
  close(): void {
    for (const pairing of [...this.waiting.values()]) {
      pairing.first?.close(1001, 'node shutting down');
      pairing.second?.close(1001, 'node shutting down');
      this.end(pairing, 'node shutting down');
    }
  }

  private unpaired(pairing: Pairing): void {
    if (pairing.over) return;
    this.end(pairing, 'unpaired');
    this.log.info('session.unpaired', { kind: 'rendezvous', keyId: keyId(pairing.key), address: pairing.address, waitedMs: this.limits.pairWaitMs });
    pairing.first?.close(CLOSE.unpaired, 'no second party joined in time');
    pairing.second?.close(CLOSE.unpaired, 'no first party joined in time');
  }

  private end(pairing: Pairing, _why: string): void {
    if (pairing.over) return;
    pairing.over = true;
    clearTimeout(pairing.timer);
    if (this.waiting.get(pairing.key) === pairing) this.waiting.delete(pairing.key);
    const n = (this.perAddress.get(pairing.address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(pairing.address);
    else this.perAddress.set(pairing.address, n);
  }
}
