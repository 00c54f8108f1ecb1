/** Reconnect timing. Full jitter spreads a crowd of clients over the whole window. */
export interface BackoffOptions {
  /** First delay ceiling. Default 1 000 ms. */
  readonly baseMs: number;
  /** Growth per attempt. Default 2. */
  readonly factor: number;
  /** Largest delay ceiling. Default 30 000 ms. */
  readonly capMs: number;
  /** Attempts before giving up with an error; Infinity never gives up. Default Infinity. */
  readonly maxAttempts: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 1_000, factor: 2, capMs: 30_000, maxAttempts: Number.POSITIVE_INFINITY };

/**
 * Delay before reconnect attempt `attempt` (0-based): uniform in [0, min(cap, base * factor^attempt)).
 * `random` is injectable so tests can pin it.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.capMs, options.baseMs * Math.pow(options.factor, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}
