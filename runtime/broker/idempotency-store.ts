import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { optionKeys, rejectUnknownOptions } from "../errors/check-options.js";
import {
  IdempotencyWindow,
  type IdempotencyLimits,
  type Outcome,
  type RequestFingerprint,
} from "../session/idempotency-window.js";

/**
 * Where exactly-once requests are remembered. The embedded store lives in one node's memory;
 * the Redis and NATS stores are shared, so that a client's retry on another node still gets
 * the first outcome instead of a second run.
 *
 * Records are scoped to a principal: another principal's key never matches. A record is
 * "running" from begin() until complete() or forget(); a running record whose lease ran out
 * (its node died) may be taken over by the next request with the same key.
 */
export interface IdempotencyStore {
  /**
   * Registers a request under (principal, key).
   * - "run": this request is the first (or took over an expired lease): run it, then call
   *   complete() or forget().
   * - "done": a request with the same key and fingerprint finished; here is its outcome.
   *   When the first one is still running, begin() waits for it (bounded by `signal`).
   * - "conflict": the key was used for a different request (other target or payload).
   * Rejects with the signal's reason when `signal` aborts while waiting, and with a
   * RESOURCE_EXHAUSTED ProtocastError (reason "idempotency_window_full") when a bounded store
   * holds nothing but running records; the server passes that error on to the client.
   */
  begin(principal: string, key: string, request: RequestFingerprint, options: BeginOptions): Promise<StoreBeginResult>;
  /** Records the outcome of a request that ran; duplicates waiting in begin() receive it. */
  complete(principal: string, key: string, outcome: Outcome): Promise<void>;
  /**
   * Drops the record of a request that ended transiently (canceled, deadline, unavailable),
   * so that a retry runs it again. Duplicates waiting in begin() receive `outcome`.
   */
  forget(principal: string, key: string, outcome: Outcome): Promise<void>;
  /** Records held, when the store can tell cheaply (the embedded one); undefined otherwise. */
  readonly size?: number;
  close(): Promise<void>;
}

export interface BeginOptions {
  /**
   * How long the first request may run before another node may take its key over: the
   * call's deadline plus a margin. A shared store needs it because a node can die mid-call.
   */
  readonly leaseMs: number;
  /** Ends a wait for a running duplicate. */
  readonly signal?: AbortSignal | undefined;
}

export type StoreBeginResult =
  | { readonly kind: "run" }
  | { readonly kind: "done"; readonly outcome: Outcome }
  | { readonly kind: "conflict" };

/** Options of the embedded store: the window's limits and the clock. */
export interface MemoryIdempotencyOptions extends Partial<IdempotencyLimits> {
  /** Clock; tests inject a fake one. Default Date.now. */
  readonly now?: () => number;
}

/** Expired records one sweep removes at most; the next sweep goes on where it stopped. */
const SWEEP_BUDGET = 20_000;

const OPTION_KEYS = optionKeys<MemoryIdempotencyOptions>()("now", "maxKeysPerPrincipal", "maxRecords", "ttlMs");

/**
 * The embedded store: one node's IdempotencyWindow behind the async interface. One unref'd
 * interval sweeps expired records for the whole window (a tenth of ttlMs, between 10 ms and
 * 1 s), so records go on time whether or not their principal calls again; close() stops it.
 */
export function createMemoryIdempotencyStore(options: MemoryIdempotencyOptions = {}): IdempotencyStore & { readonly window: IdempotencyWindow } {
  rejectUnknownOptions("createMemoryIdempotencyStore", options, OPTION_KEYS);
  const now = options.now ?? Date.now;
  const window = new IdempotencyWindow(options);
  const every = Math.max(10, Math.min(1_000, Math.floor(window.limits.ttlMs / 10)));
  let sweeper: ReturnType<typeof setInterval> | undefined = setInterval(() => window.sweep(now(), SWEEP_BUDGET), every);
  (sweeper as { unref?: () => void }).unref?.();
  return {
    window,
    get size() {
      return window.size;
    },
    begin(principal, key, request, options) {
      if (sweeper === undefined) return Promise.reject(new ProtocastError(Code.Unavailable, "idempotency store closed", { reason: "idempotency_store" }));
      const b = window.begin(principal, key, request, now());
      switch (b.kind) {
        case "run":
        case "conflict":
        case "done":
          return Promise.resolve(b);
        case "full":
          return Promise.reject(
            new ProtocastError(
              Code.ResourceExhausted,
              `idempotency window full: all ${window.limits.maxRecords} records (maxRecords) belong to running requests`,
              { reason: "idempotency_window_full" },
            ),
          );
        case "wait": {
          const signal = options.signal;
          if (signal === undefined) return b.outcome.then((outcome) => ({ kind: "done", outcome }));
          if (signal.aborted) return Promise.reject(signal.reason);
          return new Promise<StoreBeginResult>((resolve, reject) => {
            const onAbort = (): void => reject(signal.reason);
            signal.addEventListener("abort", onAbort, { once: true });
            void b.outcome.then((outcome) => {
              signal.removeEventListener("abort", onAbort);
              resolve({ kind: "done", outcome });
            });
          });
        }
      }
    },
    complete(principal, key, outcome) {
      window.complete(principal, key, outcome, now());
      return Promise.resolve();
    },
    forget(principal, key, outcome) {
      window.forget(principal, key, outcome);
      return Promise.resolve();
    },
    close() {
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      // Duplicates still waiting hear a transient outcome, so that their retry runs elsewhere.
      window.clear({ kind: "error", code: Code.Unavailable, message: "idempotency store closed", reason: "idempotency_store" });
      return Promise.resolve();
    },
  };
}
