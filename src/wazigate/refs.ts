/**
 * The refs of the requests a node's wazigate cloud listeners wait on. Every cloud listener
 * subscribes to `devices/+/tunnel-up/+` and so receives every answer: one book per node keeps
 * two listeners from waiting on the same ref, and lets each tell a sibling's answer, or a late
 * one, from a stray.
 */

/** Refs count 1 .. 2^31-1, then start over, as the original's. */
const MAX_REF = 2_147_483_647;
/** How many finished refs are remembered (so a sibling's copy or a late answer is no alarm). */
const FINISHED_KEPT = 4096;

export interface Waiting {
  /** The listener waiting (its key). */
  owner: string;
  gateway: string;
  answer(payload: Buffer): void;
}

/** What became of a ref lately. */
export interface Finished {
  owner: string;
  gateway: string;
  /** `answered`: an answer was taken; `gave-up`: the client left or the timeout passed. */
  how: 'answered' | 'gave-up';
}

export class RefBook {
  readonly waiting = new Map<number, Waiting>();
  private last = 0;
  private readonly finished = new Map<number, Finished>();

  /** A ref no request waits on. */
  take(): number {
    do {
      this.last = this.last >= MAX_REF ? 1 : this.last + 1;
    } while (this.waiting.has(this.last));
    return this.last;
  }

  /** The request of `ref` takes no more answers: it has one (`answered`) or nobody waits (`gave-up`). */
  finish(ref: number, how: Finished['how']): void {
    const w = this.waiting.get(ref);
    if (!w) return;
    this.waiting.delete(ref);
    if (this.finished.size >= FINISHED_KEPT) {
      const oldest = this.finished.keys().next();
      if (!oldest.done) this.finished.delete(oldest.value);
    }
    this.finished.set(ref, { owner: w.owner, gateway: w.gateway, how });
  }

  /** What became of `ref` lately, if it was recently waited on. */
  finishedOf(ref: number): Finished | undefined {
    return this.finished.get(ref);
  }
}
