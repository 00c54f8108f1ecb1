import { expectMethods, rejectUnknownOptions } from "../errors/check-options.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { OutboxStore } from "./outbox-store.js";

/** Bounds of the outbox. Each has a default; see defaultOutboxLimits. */
export interface OutboxLimits {
  /**
   * Calls held at once: stored and not answered, or recovered with an outcome not read yet.
   * A call past it fails at once with RESOURCE_EXHAUSTED "outbox_full". Default 1 000.
   */
  readonly maxRecords: number;
  /** Request bytes held at once, bounded the same way. Default 4 MiB. */
  readonly maxBytes: number;
  /**
   * How old a stored call may be and still be sent again. An older one is reported as
   * "expired" instead: the server may have forgotten its key, and a resend could run it twice.
   * Default 300 000 ms (5 min), the time PROTOCOL.md 5.3 rule 7 gives a client to stop retrying
   * a key, half the server's default 10-minute window. Keep it below the server's idempotencyTtlMs.
   */
  readonly maxAgeMs: number;
}

export const defaultOutboxLimits: OutboxLimits = { maxRecords: 1_000, maxBytes: 4 * 1024 * 1024, maxAgeMs: 300_000 };

/** The outbox option of connect(), with bounds: `{ store: indexedDbOutbox("app"), maxRecords: 200 }`. */
export interface OutboxOptions extends Partial<OutboxLimits> {
  readonly store: OutboxStore;
}

export interface ResolvedOutbox {
  readonly store: OutboxStore;
  readonly limits: OutboxLimits;
}

const STORE_METHODS = ["put", "delete", "list", "clear"] as const;
const OPTION_KEYS = ["store", "maxRecords", "maxBytes", "maxAgeMs"] as const;

/** Checks connect()'s `outbox` option: a store, or a store with bounds. Throws INVALID_ARGUMENT naming the fault. */
export function resolveOutbox(where: string, value: OutboxStore | OutboxOptions | undefined): ResolvedOutbox | undefined {
  if (value === undefined) return undefined;
  const isStore = typeof value === "object" && value !== null && typeof (value as { put?: unknown }).put === "function";
  if (isStore) {
    expectMethods(where, "outbox", value, STORE_METHODS);
    return { store: value as OutboxStore, limits: defaultOutboxLimits };
  }
  expectMethods(where, "outbox", value, []);
  const options = value as OutboxOptions;
  rejectUnknownOptions(`${where} outbox`, options, OPTION_KEYS);
  if (options.store === undefined) throw bad(where, "option outbox needs a store: pass indexedDbOutbox(name), memoryOutbox() or an OutboxStore, or { store, ...bounds }");
  expectMethods(where, "outbox.store", options.store, STORE_METHODS);
  const limits: { -readonly [K in keyof OutboxLimits]: number } = { ...defaultOutboxLimits };
  for (const name of ["maxRecords", "maxBytes", "maxAgeMs"] as const) {
    const v = options[name];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1) throw bad(where, `option outbox.${name} must be an integer >= 1, got ${String(v)}`);
    limits[name] = v;
  }
  return { store: options.store, limits };
}

function bad(where: string, message: string): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `${where}: ${message}`, { reason: "bad_option" });
}
