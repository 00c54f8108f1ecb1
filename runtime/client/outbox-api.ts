import type { ProtocastError } from "../errors/protocast-error.js";
import type { Metadata as MetadataFrame } from "../wire/envelope.js";
import type { Metadata } from "../wire/metadata.js";
import type { OutboxRecord, OutboxStore } from "./outbox-store.js";

// What a connection knows of the outbox: the public types, and the narrow interface through
// which it drives one. The outbox's code (outbox.ts) is reached only through the functions that
// make stores (memoryOutbox, indexedDbOutbox, fileOutbox, customOutbox), which attach it under
// OUTBOX_ENGINE; a client that configures no outbox does not load it, and a bundler leaves it out.

/** What a recovered call ended with. */
export type OutboxOutcome<R> =
  | { readonly kind: "reply"; readonly response: R }
  /** The server's answer was an error (recorded in its window, or final). */
  | { readonly kind: "error"; readonly error: ProtocastError }
  /** Stored longer ago than maxAgeMs: not sent again; whether it ran is unknown. */
  | { readonly kind: "expired"; readonly error: ProtocastError };

/** A call of an earlier client, found in the store and answered (or expired). */
export interface OutboxRecovered {
  readonly idempotencyKey: string;
  /** Method path, "package.Service/Method". */
  readonly method: string;
  /** The encoded request. */
  readonly request: Uint8Array;
  /** When the earlier client stored it, ms since the epoch. */
  readonly storedAt: number;
  /** The metadata the call was sent with (and sent again with); empty for a call without any. */
  readonly metadata: Metadata;
  readonly outcome: OutboxOutcome<Uint8Array>;
}

/** Options of Outbox.recovered(). */
export interface RecoveredReadOptions<T> {
  /** Only calls of these method paths; others are left for another reader. Default all. */
  readonly methods?: readonly string[];
  /** Turns each item into what the reader yields; a throw reports the record as corrupt and drops it. */
  readonly map?: (item: OutboxRecovered) => T;
}

export interface OutboxEvents {
  /**
   * Something in the store could not be used or written: a corrupt or foreign entry (skipped;
   * a corrupt one of this outbox is deleted), a store that cannot be read or written. Never
   * thrown: the connection goes on without the entry.
   */
  error: ProtocastError;
}

export interface Outbox {
  /** Whether connect() was given a store. Without one, recovered() ends at once. */
  readonly enabled: boolean;
  /** Calls held now: stored and unanswered, or recovered with an outcome not read yet. */
  readonly held: { readonly records: number; readonly bytes: number };
  /**
   * Outcomes of the calls an earlier client left in the store, each yielded once by this
   * client. A record is deleted when the reader asks for the next item (or leaves the loop), so
   * an outcome whose handling a reload cut short is offered again to the next page. Ends when
   * every stored call has been handed over, or when the connection closes (what is left stays
   * for the next client).
   */
  recovered(): AsyncIterableIterator<OutboxRecovered>;
  recovered<T>(options: RecoveredReadOptions<T>): AsyncIterableIterator<T>;
  /**
   * Resolves once every store write begun so far has settled: the records of the calls made,
   * the deletions of answered ones. A call made just before the page goes away is only safe
   * after this; a page that navigates on purpose can wait for it.
   */
  stored(): Promise<void>;
  on<K extends keyof OutboxEvents>(event: K, listener: (data: OutboxEvents[K]) => void): () => void;
}

/** What the outbox needs of its connection. */
export interface OutboxHost {
  now(): number;
  /** True once the connection is closing or closed. */
  readonly closed: boolean;
  /** Resolves when the connection is open; rejects when it closed for good. */
  opened(): Promise<void>;
  /** Sends a stored call again, with its key, bytes and metadata; resolves with the reply payload. */
  resend(record: OutboxRecord): Promise<Uint8Array>;
}

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

export interface ResolvedOutbox {
  readonly store: OutboxStore;
  readonly limits: OutboxLimits;
  /** The outbox's code, which the store brought (outbox-api.ts). */
  readonly engine: OutboxEngine;
}

/** An outbox as its connection drives it: the public face, plus the call path and the end. */
export interface LiveOutbox extends Outbox {
  /**
   * Runs a call through the outbox: stores it, sends it (`run`), and deletes the record after
   * the outcome has been handed to the application. `metadata` is what `run` sends.
   */
  track<T>(call: TrackedCall, run: () => Promise<T>): Promise<T>;
  /** The connection closed: readers end after what is ready; the rest stays in the store. */
  closed(): void;
}

/** A call as its connection hands it to the outbox, with the metadata it is sent with. */
export interface TrackedCall {
  readonly key: string;
  readonly method: string;
  readonly request: Uint8Array;
  readonly timeoutMs: number;
  readonly metadata: MetadataFrame | undefined;
}

/** Makes the outbox of one connection over a configured store. */
export type OutboxEngine = (config: ResolvedOutbox, host: OutboxHost) => LiveOutbox;

/** Where a store made by an outbox factory carries the outbox's code. */
export const OUTBOX_ENGINE: unique symbol = Symbol("protocast.outbox");

/** The engine a store carries, if it carries one. */
export function engineOf(store: object): OutboxEngine | undefined {
  const engine = (store as { [OUTBOX_ENGINE]?: unknown })[OUTBOX_ENGINE];
  return typeof engine === "function" ? (engine as OutboxEngine) : undefined;
}

/** Whether a call of these rules goes through the outbox: the ones that carry an idempotency key and are retried. */
export function keptByOutbox(rules: { readonly delivery: string; readonly idempotent: boolean }): boolean {
  return rules.idempotent && rules.delivery !== "at-most-once";
}

const ended: AsyncIterableIterator<never> = {
  next: () => Promise.resolve({ value: undefined, done: true }),
  return: () => Promise.resolve({ value: undefined, done: true }),
  [Symbol.asyncIterator]() {
    return this;
  },
};

/** The outbox of a connection given no store: holds nothing, recovers nothing, never reports. */
export const NO_OUTBOX: LiveOutbox = {
  enabled: false,
  held: Object.freeze({ records: 0, bytes: 0 }),
  recovered: () => ended,
  stored: () => Promise.resolve(),
  on: () => () => undefined,
  track: (_call, run) => run(),
  closed: () => undefined,
};
