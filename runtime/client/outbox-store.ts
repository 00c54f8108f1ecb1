import type { Metadata } from "../wire/metadata.js";

/**
 * Where the outbox keeps calls that have not been answered yet, so that a client started after
 * a page reload, a crash or a restart can send them again under the same idempotency keys
 * (PROTOCOL.md 5.2: "applications that persist pending operations across restarts persist the
 * key with them").
 */

/** One stored call: what a later client needs to send it again, byte for byte. */
export interface OutboxRecord {
  /**
   * Format of the record. A value without `version: 1` in a store is not this outbox's.
   * `metadata` was added later as an optional field, under the same version: a record of an
   * earlier release reads as a call without metadata, and an earlier release reads a record
   * that has it as one of its own and resends the call without it, where a new version would
   * have it skip the call as foreign and leave it unsent.
   */
  readonly version: 1;
  /** The call's idempotency key; also the record's key in the store. */
  readonly key: string;
  /** Method path on the wire, "package.Service/Method". */
  readonly method: string;
  /** The encoded request, as first sent: a retry must carry the same bytes (PROTOCOL.md 5.2). */
  readonly request: Uint8Array;
  /** The call's timeout, used again when it is resent. */
  readonly timeoutMs: number;
  /**
   * The metadata the call was sent with (PROTOCOL.md 3.8): the connection's defaults with the
   * call's own over them, checked, and with tracing its trace context. A resend carries it
   * unchanged. Absent when the call carried none.
   */
  readonly metadata?: Metadata;
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
  const record: OutboxRecord = { version: 1, key, method, request: r["request"], timeoutMs, storedAt };
  const metadata = readMetadata(r["metadata"]);
  if (typeof metadata === "string") return bad(metadata);
  return metadata === undefined ? record : { ...record, metadata };
}

/**
 * The stored metadata as a copy of its own, undefined when there is none (null too, as a store
 * with a column per field may give back), or what is wrong with it. Its keys and sizes are the
 * server's to judge: they passed the client's check when the call was first sent.
 */
function readMetadata(value: unknown): Metadata | undefined | string {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) return "its metadata is not an object of strings";
  const out = Object.create(null) as Record<string, string>;
  let entries = 0;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") return `its metadata value of ${JSON.stringify(k)} is not a string`;
    out[k] = v;
    entries++;
  }
  return entries === 0 ? undefined : Object.freeze(out);
}

export function isRecordProblem(r: OutboxRecord | RecordProblem): r is RecordProblem {
  return "kind" in r;
}

/** Bytes a record stands for in the outbox's bound: the request plus its fields, roughly. */
export function recordBytes(r: OutboxRecord): number {
  let bytes = r.request.byteLength + r.method.length + r.key.length + 32;
  if (r.metadata !== undefined) for (const [k, v] of Object.entries(r.metadata)) bytes += k.length + v.length;
  return bytes;
}
