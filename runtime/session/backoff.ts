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

/**
 * Ceiling of the delay before the first attempt after an open connection dropped. The full
 * backoff (1 s ceiling by default, 500 ms on average) was most of a reconnect's time under
 * packet loss; a short window still spreads the clients of a node that died.
 */
export const FIRST_RETRY_MS = 100;

/** Delay before the first attempt after an established connection dropped: uniform in [0, min(FIRST_RETRY_MS, base)). */
export function firstRetryDelay(options: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(FIRST_RETRY_MS, options.baseMs));
}
