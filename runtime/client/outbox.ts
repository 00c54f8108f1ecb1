import { expectMethods } from "../errors/check-options.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { NO_METADATA, metadataView } from "../wire/metadata.js";
import { Emitter } from "./emitter.js";
import { OUTBOX_ENGINE, type LiveOutbox, type OutboxEvents, type OutboxHost, type OutboxOutcome, type OutboxRecovered, type RecoveredReadOptions, type TrackedCall } from "./outbox-api.js";
import type { ResolvedOutbox } from "./outbox-options.js";
import { isRecordProblem, readRecord, recordBytes, type OutboxRecord, type OutboxStore } from "./outbox-store.js";

/**
 * The outbox of a connection (opt-in, ConnectOptions.outbox). Every call it keeps (exactly-once,
 * or idempotent at-least-once) is written to the store before it is sent, and its record is
 * deleted once its outcome has reached the application. Whatever is left in the store when
 * a page reloads or a process dies is read by the next client over the same store:
 *
 *   store.list() ── age > maxAgeMs ──────────────────────────────────▶ outcome "expired"
 *        │
 *        └── wait for open ── resend, same key, bytes and metadata ──▶ outcome "reply" / "error"
 *                                   ▲           │ transient failure (connection, deadline)
 *                                   └─ backoff ─┘ up to RESEND_ATTEMPTS times
 *
 * The server's idempotency window (PROTOCOL.md 5.3) answers a resend of a call it already ran
 * with the recorded outcome, so each call runs once however often it is sent within the window.
 * Outcomes wait in memory until the application reads them from recovered().
 *
 * Delivery to the application is at-least-once. Deleting a record and handing its outcome over
 * cannot be one atomic step, and the order decides what a reload at that instant costs: delete
 * first and the outcome can be lost (the delete commits, the page is gone before it hears so;
 * the Chromium test caught this), deliver first and it can come again in the next page. Losing
 * it is what the outbox exists to prevent, so it delivers first; the idempotency key tells a
 * repeat apart.
 */

/** Resends of one recovered call that fail for a passing reason, before the failure is its outcome. */
const RESEND_ATTEMPTS = 5;
/** Recovered calls in flight at once: well under the server's default 256 running calls, leaving room for the application's own. */
const RESEND_CONCURRENCY = 100;

/** Failures that say nothing about the call itself: the server keeps no record of them (PROTOCOL.md 5.3 rule 6). */
function passing(e: ProtocastError): boolean {
  if (e.code === Code.ResourceExhausted) return e.reason !== "reply_too_large";
  return e.code === Code.Unavailable || e.code === Code.DeadlineExceeded || e.code === Code.Aborted || e.code === Code.Canceled;
}

/** The outbox of one connection over a configured store (the OutboxEngine stores carry). */
export function createOutbox(config: ResolvedOutbox, host: OutboxHost): LiveOutbox {
  return new OutboxImpl(config, host);
}

/** Gives a store made here the outbox's code, so that connect() can run an outbox on it. */
export function withOutbox(store: OutboxStore): OutboxStore {
  return Object.assign(store, { [OUTBOX_ENGINE]: createOutbox });
}

/**
 * Makes an OutboxStore of your own usable as connect()'s `outbox`: the returned store calls
 * yours, and brings the outbox's code with it (the stores Protocast makes bring it themselves).
 */
export function customOutbox(store: OutboxStore): OutboxStore {
  expectMethods("customOutbox", "store", store, ["put", "delete", "list", "clear"]);
  return withOutbox({
    put: (record: OutboxRecord) => store.put(record),
    delete: (key: string) => store.delete(key),
    list: () => store.list(),
    clear: () => store.clear(),
  });
}

interface Held {
  /** Live calls plus the recovered entry (0 or 1) that use the key. */
  holders: number;
  readonly bytes: number;
}

class OutboxImpl implements LiveOutbox {
  private readonly emitter = new Emitter<OutboxEvents>();
  private readonly holds = new Map<string, Held>();
  private heldBytes = 0;
  /** Recovered calls whose outcome is not known yet, by key. */
  private readonly waiting = new Map<string, OutboxRecord>();
  /** Recovered outcomes not handed over yet, oldest first. */
  private readonly ready: OutboxRecovered[] = [];
  private loading: boolean;
  private wakeUps: (() => void)[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Writes under way, for stored(). */
  private readonly writes = new Set<Promise<void>>();

  constructor(
    private readonly config: ResolvedOutbox,
    private readonly host: OutboxHost,
  ) {
    this.loading = true;
    void this.load(config);
  }

  get enabled(): boolean {
    return true;
  }

  get held(): { readonly records: number; readonly bytes: number } {
    return { records: this.holds.size, bytes: this.heldBytes };
  }

  on<K extends keyof OutboxEvents>(event: K, listener: (data: OutboxEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  // ---- live calls ----------------------------------------------------------------------

  /** Resolves once the writes under way now have settled (Outbox.stored). */
  stored(): Promise<void> {
    return Promise.all(this.writes).then(() => undefined);
  }

  /** Notes a store write for stored() while it is under way. */
  private writing(started: Promise<void>): Promise<void> {
    // A store method that returns no promise (a synchronous store) counts as done.
    const write = Promise.resolve(started);
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    this.writes.add(settled);
    void settled.then(() => this.writes.delete(settled));
    return write;
  }

  /**
   * Runs a call through the outbox: stores it, sends it (`run`), and deletes the record after
   * the outcome has been handed to the application. When the call fails because the
   * connection closed, the record stays for the next client.
   */
  async track<T>(call: TrackedCall, run: () => Promise<T>): Promise<T> {
    const config = this.config;
    const { metadata, ...fields } = call;
    const stored: OutboxRecord = { version: 1, ...fields, storedAt: this.host.now() };
    // The metadata as sent, trace context included: a resend by a later client carries the same.
    const record = metadata === undefined ? stored : { ...stored, metadata: metadataView(metadata) };
    this.hold(record, config);
    try {
      await this.writing(config.store.put(record));
    } catch (e) {
      this.release(record.key);
      throw new ProtocastError(Code.Unavailable, `${call.method} was not sent: the outbox could not store it: ${ProtocastError.from(e).rawMessage}`, { reason: "outbox_write_failed", cause: e });
    }
    let result: T;
    try {
      result = await run();
    } catch (e) {
      if (this.host.closed) this.release(record.key);
      else this.forgetLater(record.key);
      throw e;
    }
    this.forgetLater(record.key);
    return result;
  }

  /**
   * Forgets the key in a task of its own: by then the application's callbacks on the outcome
   * (microtasks) have run, so the record outlives the moment the outcome was handed over.
   */
  private forgetLater(key: string): void {
    setTimeout(() => void this.forget(key), 0);
  }

  /** Counts a record against the bounds; throws RESOURCE_EXHAUSTED "outbox_full" past them. */
  private hold(record: OutboxRecord, config: ResolvedOutbox): void {
    const h = this.holds.get(record.key);
    if (h !== undefined) {
      h.holders++;
      return;
    }
    const bytes = recordBytes(record);
    const { maxRecords, maxBytes } = config.limits;
    if (this.holds.size + 1 > maxRecords || this.heldBytes + bytes > maxBytes) {
      const what = `the outbox holds ${this.holds.size} calls (${this.heldBytes} bytes) and ${record.method} needs ${bytes} bytes more; maxRecords ${maxRecords}, maxBytes ${maxBytes}`;
      throw new ProtocastError(Code.ResourceExhausted, what, { reason: "outbox_full" });
    }
    this.holds.set(record.key, { holders: 1, bytes });
    this.heldBytes += bytes;
  }

  /** Stops counting one holder of the key; the stored record is left alone. Returns whether it was the last. */
  private release(key: string): boolean {
    const h = this.holds.get(key);
    if (h === undefined) return false;
    if (--h.holders > 0) return false;
    this.holds.delete(key);
    this.heldBytes -= h.bytes;
    return true;
  }

  /** Releases the key and, when nothing else holds it, deletes its record. Failures are reported, not thrown. */
  private async forget(key: string): Promise<void> {
    const config = this.config;
    if (!this.release(key)) return;
    try {
      await this.writing(config.store.delete(key));
    } catch (e) {
      this.report(new ProtocastError(Code.Unavailable, `the outbox could not delete the record of key ${key}; a later client may report its outcome again: ${ProtocastError.from(e).rawMessage}`, { reason: "outbox_write_failed", cause: e }));
    }
  }

  private report(e: ProtocastError): void {
    this.emitter.emit("error", e);
  }

  // ---- recovery ------------------------------------------------------------------------

  private async load(config: ResolvedOutbox): Promise<void> {
    let entries: readonly unknown[] = [];
    try {
      const listed = await config.store.list();
      if (!Array.isArray(listed)) throw new Error(`list() gave ${typeof listed}, not a list`);
      entries = listed;
    } catch (e) {
      this.report(new ProtocastError(Code.Unavailable, `the outbox store could not be read; no earlier calls are recovered: ${ProtocastError.from(e).rawMessage}`, { reason: "outbox_unreadable", cause: e }));
    }
    const toSend: OutboxRecord[] = [];
    for (const entry of entries) {
      const r = readRecord(entry);
      if (isRecordProblem(r)) {
        const what = r.kind === "foreign" ? "is not an outbox record; skipped and left in the store" : "is damaged; skipped and deleted";
        this.report(new ProtocastError(Code.DataLoss, `an entry of the outbox store${r.key === undefined ? "" : ` (key ${r.key})`} ${what}: ${r.detail}`, { reason: r.kind === "foreign" ? "outbox_record_foreign" : "outbox_record_corrupt" }));
        if (r.kind === "corrupt" && r.key !== undefined) await this.deleteQuietly(config, r.key);
        continue;
      }
      // A call of this client that was stored while the list was read: it is live, not recovered.
      if (this.holds.has(r.key) || this.waiting.has(r.key)) continue;
      // Recovered records count against the bounds, but never fail: they are already stored.
      this.holds.set(r.key, { holders: 1, bytes: recordBytes(r) });
      this.heldBytes += recordBytes(r);
      const age = this.host.now() - r.storedAt;
      if (age > config.limits.maxAgeMs) {
        const error = new ProtocastError(Code.Unavailable, `${r.method} was stored ${Math.round(age / 1000)} s ago, past the outbox's maxAgeMs of ${config.limits.maxAgeMs} ms; not sent again, it may or may not have run`, { reason: "outbox_expired" });
        this.ready.push(recovered(r, { kind: "expired", error }));
      } else {
        this.waiting.set(r.key, r);
        toSend.push(r);
      }
    }
    this.loading = false;
    this.wake();
    if (toSend.length > 0) await this.resendAll(toSend, config);
  }

  private async deleteQuietly(config: ResolvedOutbox, key: string): Promise<void> {
    try {
      await config.store.delete(key);
    } catch {
      // Reported once already as corrupt; it will be reported again next start.
    }
  }

  private async resendAll(records: OutboxRecord[], config: ResolvedOutbox): Promise<void> {
    try {
      await this.host.opened();
    } catch {
      return this.wake(); // closed before it ever opened: everything stays for the next client
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < records.length && !this.host.closed) await this.resendOne(records[next++]!, config);
    };
    await Promise.all(Array.from({ length: Math.min(RESEND_CONCURRENCY, records.length) }, worker));
    this.wake();
  }

  private async resendOne(r: OutboxRecord, config: ResolvedOutbox): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.host.closed) return;
      const age = this.host.now() - r.storedAt;
      if (age > config.limits.maxAgeMs) {
        const error = new ProtocastError(Code.Unavailable, `${r.method} got no answer within the outbox's maxAgeMs of ${config.limits.maxAgeMs} ms; it may or may not have run`, { reason: "outbox_expired" });
        return this.settle(r, { kind: "expired", error });
      }
      try {
        const payload = await this.host.resend(r);
        return this.settle(r, { kind: "reply", response: payload });
      } catch (e) {
        const error = ProtocastError.from(e);
        if (this.host.closed) return;
        if (!passing(error) || attempt >= RESEND_ATTEMPTS) return this.settle(r, { kind: "error", error });
        await this.pause(Math.min(5_000, 250 * 2 ** attempt));
        try {
          await this.host.opened();
        } catch {
          return;
        }
      }
    }
  }

  private settle(r: OutboxRecord, outcome: OutboxOutcome<Uint8Array>): void {
    if (!this.waiting.delete(r.key)) return;
    this.ready.push(recovered(r, outcome));
    this.wake();
  }

  /** A delay that ends early when the connection closes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  /** The connection closed: readers end after what is ready; the rest stays in the store. */
  closed(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUps;
    this.wakeUps = [];
    for (const f of w) f();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.wakeUps.push(resolve));
  }

  // ---- readers -------------------------------------------------------------------------

  recovered(): AsyncIterableIterator<OutboxRecovered>;
  recovered<T>(options: RecoveredReadOptions<T>): AsyncIterableIterator<T>;
  recovered<T>(options: RecoveredReadOptions<T> = {}): AsyncIterableIterator<T | OutboxRecovered> {
    const paths = options.methods === undefined ? undefined : new Set(options.methods);
    const map = options.map ?? ((item: OutboxRecovered) => item);
    const wanted = (method: string): boolean => paths === undefined || paths.has(method);
    let done = false;
    /** The item yielded last: its record goes when the reader comes back for more, or leaves. */
    let handedOver: string | undefined;
    const acknowledge = (): void => {
      if (handedOver !== undefined) void this.forget(handedOver);
      handedOver = undefined;
    };
    const finished = (): boolean => {
      if (this.loading) return false;
      if (this.host.closed) return true;
      for (const r of this.waiting.values()) if (wanted(r.method)) return false;
      return true;
    };
    const iterator: AsyncIterableIterator<T | OutboxRecovered> = {
      next: async () => {
        acknowledge();
        while (!done) {
          const i = this.ready.findIndex((r) => wanted(r.method));
          if (i >= 0) {
            const item = this.ready.splice(i, 1)[0]!;
            let value: T | OutboxRecovered;
            try {
              value = map(item);
            } catch (e) {
              this.report(new ProtocastError(Code.DataLoss, `the recovered call ${item.method} (key ${item.idempotencyKey}) could not be read; dropped: ${ProtocastError.from(e).rawMessage}`, { reason: "outbox_record_corrupt", cause: e }));
              await this.forget(item.idempotencyKey);
              continue;
            }
            handedOver = item.idempotencyKey;
            return { value, done: false };
          }
          if (finished()) break;
          await this.changed();
        }
        done = true;
        return { value: undefined, done: true };
      },
      return: () => {
        acknowledge();
        done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

function recovered(r: OutboxRecord, outcome: OutboxOutcome<Uint8Array>): OutboxRecovered {
  return { idempotencyKey: r.key, method: r.method, request: r.request, storedAt: r.storedAt, metadata: r.metadata ?? NO_METADATA, outcome };
}
