import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Metadata as MetadataFrame, MetadataEntry } from "./envelope.js";

/**
 * Metadata of a call, a publish or a channel event (PROTOCOL.md 3.8): string keys and values
 * that travel beside the payload, like HTTP headers. Keys are lowercase ASCII.
 */
export type Metadata = Readonly<Record<string, string>>;

/**
 * Bounds on metadata. A client checks what the application gives it before sending; a server
 * checks what arrives and what the application publishes. The same defaults on both sides, so
 * that what a client accepts a default server accepts too.
 */
export interface MetadataLimits {
  /** Most entries in one metadata. Default 16. */
  readonly maxMetadataEntries: number;
  /** Longest key, in bytes. Default 64. */
  readonly maxMetadataKeyBytes: number;
  /** Longest value, in bytes of UTF-8. Default 1024 (a W3C tracestate fits in 512). */
  readonly maxMetadataValueBytes: number;
  /** Most bytes of all keys and values together. Default 4096. */
  readonly maxMetadataBytes: number;
}

export const DEFAULT_METADATA_LIMITS: MetadataLimits = Object.freeze({
  maxMetadataEntries: 16,
  maxMetadataKeyBytes: 64,
  maxMetadataValueBytes: 1024,
  maxMetadataBytes: 4096,
});

/** Keys that start with this are the runtime's own; an application may not set them. */
export const RESERVED_METADATA_PREFIX = "protocast-";

/** The W3C trace context keys (PROTOCOL.md 3.8): set by the runtime when tracing is on. */
export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

/** Lowercase letters, digits, "-", "_" and "."; a letter or digit first. */
const KEY = /^[a-z0-9][a-z0-9._-]*$/;

/** The metadata of a frame without any: one frozen object shared by all. */
export const NO_METADATA: Metadata = Object.freeze(Object.create(null) as Record<string, string>);

const utf8 = new TextEncoder();

function utf8Length(value: string): number {
  // ASCII-only strings (the usual case) are as long in bytes as in UTF-16 units.
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return utf8.encode(value).length;
  return value.length;
}

function bad(message: string): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, message, { reason: "bad_metadata" });
}

/** Fills in defaults and checks every bound (INVALID_ARGUMENT "bad_option" naming it). */
export function resolveMetadataLimits(limits: Partial<MetadataLimits> = {}): MetadataLimits {
  const out = { ...DEFAULT_METADATA_LIMITS, ...limits };
  for (const name of Object.keys(DEFAULT_METADATA_LIMITS) as (keyof MetadataLimits)[]) {
    const v = out[name];
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ProtocastError(Code.InvalidArgument, `${name} must be a positive integer, got ${String(v)}`, { reason: "bad_option" });
    }
  }
  return Object.freeze(out);
}

/** Checks one entry and adds its size to the running total; the problem, or undefined. */
function entryProblem(key: string, value: unknown, limits: MetadataLimits): string | undefined {
  if (typeof value !== "string") return `metadata value of "${key}" is not a string`;
  if (key.length > limits.maxMetadataKeyBytes) return `metadata key "${key.slice(0, 16)}…" is longer than ${limits.maxMetadataKeyBytes} bytes`;
  if (!KEY.test(key)) return `metadata key ${JSON.stringify(key)} is not lowercase ASCII (letters, digits, "-", "_", ".")`;
  if (utf8Length(value) > limits.maxMetadataValueBytes) return `metadata value of "${key}" is longer than ${limits.maxMetadataValueBytes} bytes`;
  return undefined;
}

/**
 * Checks metadata an application gives the runtime (a call, a publish, connection defaults)
 * and returns it as the wire's entries, or undefined when it is empty. Keys with the reserved
 * prefix are refused unless `runtime` says the runtime set them. Throws INVALID_ARGUMENT
 * "bad_metadata" naming the first problem; nothing is sent then.
 */
export function metadataFrame(metadata: Metadata | undefined, limits: MetadataLimits, runtimeKeys?: ReadonlySet<string>): MetadataFrame | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== "object" || metadata === null) throw bad("metadata must be an object of strings");
  const keys = Object.keys(metadata);
  if (keys.length === 0) return undefined;
  if (keys.length > limits.maxMetadataEntries) throw bad(`${keys.length} metadata entries, more than ${limits.maxMetadataEntries}`);
  const entries: MetadataEntry[] = [];
  let total = 0;
  for (const key of keys) {
    const value = metadata[key];
    const problem = entryProblem(key, value, limits);
    if (problem !== undefined) throw bad(problem);
    if (key.startsWith(RESERVED_METADATA_PREFIX) && runtimeKeys?.has(key) !== true) throw bad(`metadata key "${key}" uses the reserved prefix "${RESERVED_METADATA_PREFIX}"`);
    total += key.length + utf8Length(value!);
    entries.push({ key, value: value! });
  }
  if (total > limits.maxMetadataBytes) throw bad(`metadata of ${total} bytes, more than ${limits.maxMetadataBytes}`);
  return { entries };
}

/**
 * Judges metadata that arrived from a peer: the Error to answer with (INVALID_ARGUMENT
 * "bad_metadata"), or undefined when it is within the limits. Duplicate keys are refused.
 * Keys with the reserved prefix are accepted: a newer runtime may send some.
 */
export function receivedMetadataProblem(m: MetadataFrame | undefined, limits: MetadataLimits): ProtocastError | undefined {
  if (m === undefined) return undefined;
  const entries = m.entries;
  if (entries.length > limits.maxMetadataEntries) return bad(`${entries.length} metadata entries, more than ${limits.maxMetadataEntries}`);
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    const { key, value } = entries[i]!;
    const problem = entryProblem(key, value, limits);
    if (problem !== undefined) return bad(problem);
    for (let j = 0; j < i; j++) if (entries[j]!.key === key) return bad(`metadata key "${key}" occurs twice`);
    total += key.length + utf8Length(value);
  }
  return total > limits.maxMetadataBytes ? bad(`metadata of ${total} bytes, more than ${limits.maxMetadataBytes}`) : undefined;
}

/**
 * The read-only view of received metadata: a frozen object without a prototype (so that a key
 * such as "constructor" is only ever what the peer sent). NO_METADATA when there is none.
 */
export function metadataView(m: MetadataFrame | undefined): Metadata {
  if (m === undefined || m.entries.length === 0) return NO_METADATA;
  const out = Object.create(null) as Record<string, string>;
  for (const { key, value } of m.entries) out[key] = value;
  return Object.freeze(out);
}

/** Metadata as the wire's entries, unchecked (it was checked already); undefined when empty. */
export function entriesOf(metadata: Metadata | undefined): MetadataFrame | undefined {
  if (metadata === undefined) return undefined;
  const entries: MetadataEntry[] = [];
  for (const key of Object.keys(metadata)) entries.push({ key, value: metadata[key]! });
  return entries.length === 0 ? undefined : { entries };
}

/** Connection defaults with a call's own metadata over them; either may be absent. */
export function mergeMetadata(defaults: Metadata | undefined, own: Metadata | undefined): Metadata | undefined {
  if (defaults === undefined || Object.keys(defaults).length === 0) return own;
  if (own === undefined) return defaults;
  return { ...defaults, ...own };
}
