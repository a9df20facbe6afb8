/** Exponential back-off with jitter: the n-th delay is uniform in [floor, min(ceiling, floor·2ⁿ)]. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly floorMs = 500,
    private readonly ceilingMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const cap = Math.min(this.ceilingMs, this.floorMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(this.floorMs + this.random() * (cap - this.floorMs));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
