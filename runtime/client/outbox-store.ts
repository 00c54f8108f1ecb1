/**
 * Where the outbox keeps calls that have not been answered yet, so that a client started after
 * a page reload, a crash or a restart can send them again under the same idempotency keys
 * (PROTOCOL.md 5.2: "applications that persist pending operations across restarts persist the
 * key with them").
 */

/** One stored call: what a later client needs to send it again, byte for byte. */
export interface OutboxRecord {
  /** Format of the record. A value without `version: 1` in a store is not this outbox's. */
  readonly version: 1;
  /** The call's idempotency key; also the record's key in the store. */
  readonly key: string;
  /** Method path on the wire, "package.Service/Method". */
  readonly method: string;
  /** The encoded request, as first sent: a retry must carry the same bytes (PROTOCOL.md 5.2). */
  readonly request: Uint8Array;
  /** The call's timeout, used again when it is resent. */
  readonly timeoutMs: number;
  /** When the record was written, in ms since the epoch (the connection's clock). */
  readonly storedAt: number;
}

/**
 * A place for outbox records. Four async methods, so that a file, a database or a browser
 * store can back it. list() may return anything the store holds: each entry is checked, and
 * one that is not a well-formed record is reported and skipped rather than trusted.
 */
export interface OutboxStore {
  /** Writes (or overwrites) the record under record.key; resolves once it is stored. */
  put(record: OutboxRecord): Promise<void>;
  delete(key: string): Promise<void>;
  list(): Promise<readonly unknown[]>;
  clear(): Promise<void>;
}

/** Why a stored entry was not taken: not ours at all, or ours but damaged. */
export type RecordProblem = { readonly kind: "foreign" | "corrupt"; readonly key: string | undefined; readonly detail: string };

/** Keys are 1 to 128 bytes (PROTOCOL.md 5.2); the outbox only ever writes 32 hex digits or the application's key. */
const MAX_KEY_LENGTH = 128;

/** Checks one entry of list(): a record, or what is wrong with it. */
export function readRecord(entry: unknown): OutboxRecord | RecordProblem {
  if (typeof entry !== "object" || entry === null) return { kind: "foreign", key: undefined, detail: `an entry of type ${entry === null ? "null" : typeof entry}` };
  const r = entry as Record<string, unknown>;
  const key = typeof r["key"] === "string" && r["key"].length > 0 ? r["key"] : undefined;
  if (r["version"] !== 1) return { kind: "foreign", key, detail: `an entry with version ${JSON.stringify(r["version"]) ?? "undefined"}` };
  const bad = (detail: string): RecordProblem => ({ kind: "corrupt", key, detail });
  if (key === undefined || key.length > MAX_KEY_LENGTH) return bad("its key is missing or longer than 128 characters");
  const method = r["method"];
  if (typeof method !== "string" || !/^[^/\s]+\/[^/\s]+$/.test(method)) return bad(`its method ${JSON.stringify(method)} is not a path "package.Service/Method"`);
  if (!(r["request"] instanceof Uint8Array)) return bad("its request is not bytes");
  const timeoutMs = r["timeoutMs"];
  if (typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 1) return bad(`its timeoutMs ${String(timeoutMs)} is not a positive integer`);
  const storedAt = r["storedAt"];
  if (typeof storedAt !== "number" || !Number.isFinite(storedAt) || storedAt < 0) return bad(`its storedAt ${String(storedAt)} is not a time`);
  return { version: 1, key, method, request: r["request"], timeoutMs, storedAt };
}

export function isRecordProblem(r: OutboxRecord | RecordProblem): r is RecordProblem {
  return "kind" in r;
}

/** Bytes a record stands for in the outbox's bound: the request plus its fields, roughly. */
export function recordBytes(r: OutboxRecord): number {
  return r.request.byteLength + r.method.length + r.key.length + 32;
}
