import { expectMethods, rejectUnknownOptions } from "../errors/check-options.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { engineOf, type OutboxEngine, type OutboxLimits, type ResolvedOutbox } from "./outbox-api.js";
import type { OutboxStore } from "./outbox-store.js";

export type { OutboxLimits, ResolvedOutbox };

export const defaultOutboxLimits: OutboxLimits = { maxRecords: 1_000, maxBytes: 4 * 1024 * 1024, maxAgeMs: 300_000 };

/** The outbox option of connect(), with bounds: `{ store: indexedDbOutbox("app"), maxRecords: 200 }`. */
export interface OutboxOptions extends Partial<OutboxLimits> {
  readonly store: OutboxStore;
}

const STORE_METHODS = ["put", "delete", "list", "clear"] as const;
const OPTION_KEYS = ["store", "maxRecords", "maxBytes", "maxAgeMs"] as const;

/** Checks connect()'s `outbox` option: a store, or a store with bounds. Throws INVALID_ARGUMENT naming the fault. */
export function resolveOutbox(where: string, value: OutboxStore | OutboxOptions | undefined): ResolvedOutbox | undefined {
  if (value === undefined) return undefined;
  const isStore = typeof value === "object" && value !== null && typeof (value as { put?: unknown }).put === "function";
  if (isStore) {
    expectMethods(where, "outbox", value, STORE_METHODS);
    return { store: value as OutboxStore, limits: defaultOutboxLimits, engine: engineFor(where, "outbox", value) };
  }
  expectMethods(where, "outbox", value, []);
  const options = value as OutboxOptions;
  rejectUnknownOptions(`${where} outbox`, options, OPTION_KEYS);
  if (options.store === undefined) throw bad(where, "option outbox needs a store: pass indexedDbOutbox(name), memoryOutbox() or customOutbox(store), or { store, ...bounds }");
  expectMethods(where, "outbox.store", options.store, STORE_METHODS);
  const limits: { -readonly [K in keyof OutboxLimits]: number } = { ...defaultOutboxLimits };
  for (const name of ["maxRecords", "maxBytes", "maxAgeMs"] as const) {
    const v = options[name];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1) throw bad(where, `option outbox.${name} must be an integer >= 1, got ${String(v)}`);
    limits[name] = v;
  }
  return { store: options.store, limits, engine: engineFor(where, "outbox.store", options.store) };
}

/** The outbox's code a store carries; a store of the application's own brings it through customOutbox(). */
function engineFor(where: string, name: string, store: object): OutboxEngine {
  const engine = engineOf(store);
  if (engine === undefined) throw bad(where, `option ${name} is a store of your own: pass customOutbox(store), which brings the outbox's code along`);
  return engine;
}

function bad(where: string, message: string): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `${where}: ${message}`, { reason: "bad_option" });
}
