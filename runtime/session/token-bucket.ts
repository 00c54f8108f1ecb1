/**
 * A token bucket: `rate` tokens per second refill it up to `burst`. take() spends tokens if
 * there are enough and says how long to wait otherwise. Pure: the clock is passed in.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Spends `n` tokens and returns 0, or returns the milliseconds until `n` would be there. */
  take(n: number, now: number): number {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.rate) / 1000);
      this.at = now;
    }
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    return Math.ceil(((n - this.tokens) * 1000) / this.rate);
  }
}
