import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";

/** Options shared by the networked brokers (Redis, NATS). */
export interface BrokerFeedOptions {
  /**
   * Milliseconds publish, subscribe, position and history wait for a lost broker connection
   * before failing with UNAVAILABLE. Default 5000.
   */
  readonly outageWaitMs?: number;
  /** Events read per history request while a node fills a gap. Default 256. */
  readonly pageSize?: number;
  /**
   * Out-of-order events a node holds per channel while it fills a gap; later ones are read
   * from history instead. Default 10000.
   */
  readonly maxPending?: number;
  /** First delay before a failed gap fill is retried (it doubles, up to 2 s). Default 100. */
  readonly retryDelayMs?: number;
  /** Hears errors nobody awaits: a throwing listener, a failed background gap fill. Default: console.error. */
  readonly onError?: (error: unknown) => void;
}

export const defaultBrokerFeedOptions = {
  outageWaitMs: 5_000,
  pageSize: 256,
  maxPending: 10_000,
  retryDelayMs: 100,
} as const;

/** Fills in the defaults; throws INVALID_ARGUMENT (reason bad_option) naming the option and the value. */
export function checkBrokerOptions(options: BrokerFeedOptions): Required<BrokerFeedOptions> {
  const checked = {
    outageWaitMs: options.outageWaitMs ?? defaultBrokerFeedOptions.outageWaitMs,
    pageSize: options.pageSize ?? defaultBrokerFeedOptions.pageSize,
    maxPending: options.maxPending ?? defaultBrokerFeedOptions.maxPending,
    retryDelayMs: options.retryDelayMs ?? defaultBrokerFeedOptions.retryDelayMs,
    onError: options.onError ?? ((error: unknown) => console.error("protocast broker:", error)),
  };
  for (const [name, min] of [["outageWaitMs", 0], ["pageSize", 1], ["maxPending", 1], ["retryDelayMs", 1]] as const) {
    const value = checked[name];
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ProtocastError(Code.InvalidArgument, `${name} must be an integer >= ${min}, got ${value}`, { reason: "bad_option" });
    }
  }
  return checked;
}
