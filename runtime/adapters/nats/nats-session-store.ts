import { connectNats, readyOrClosed } from "./connect.js";
import { ClosedConnectionError, RequestError, headers, type NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { SessionStore, SessionWrite, StoredSession } from "../../broker/session-store.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import { ensureKvBucket } from "./nats-kv.js";
import { brokerClosed, outcomeUnknown, sleep, unavailable } from "../shared/broker-errors.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

export interface NatsSessionStoreOptions {
  /** Default "127.0.0.1:4222". Unused when `connection` is given. */
  readonly servers?: string | string[];
  /** A connection to use instead of opening one; close() leaves it open. */
  readonly connection?: NatsConnection;
  /** The KV bucket (stream KV_<bucket>). Default "protocast_sessions". */
  readonly bucket?: string;
  /**
   * The bucket's max_age, in ms: the longest a session is kept after its last write or claim,
   * whatever ttlMs those calls pass. Default 600 000 (10 min).
   */
  readonly ttlMs?: number;
  /** How long a call waits for a lost connection before failing with UNAVAILABLE, in ms. Default 5000. */
  readonly outageWaitMs?: number;
}

const OPTION_KEYS = optionKeys<NatsSessionStoreOptions>()("servers", "connection", "bucket", "ttlMs", "outageWaitMs");

/**
 * A SessionStore on a JetStream KV bucket, written with @nats-io/jetstream alone (@nats-io/kv
 * is not a dependency): stream KV_<bucket> on $KV.<bucket>.>, one message kept per key, laid
 * out as the KV clients lay a bucket out. A session is the key "s<base64url of its id>"; its
 * value is the whole record (see encodeRecord), frames included, so a write re-sends every
 * unacknowledged frame of the session and a session must fit in the server's max_payload.
 *
 * Every change states the revision (stream sequence) it read; when another node changed the
 * key in between, it reads again and decides again, a few times at most. The store remembers
 * the revision and record it last wrote per session, so a node writing its own sessions
 * usually skips the read; a refusal is only ever decided on a fresh read.
 *
 * nats-server 2.9 has no per-message TTL: the bucket's max_age (option ttlMs) removes a
 * session that long after its last change, and every node must use the same ttlMs (an
 * existing bucket's max_age is set to it). A shorter ttlMs passed to write() and claim() is
 * kept in the record as an expiry time and honoured on reads, which compare it with the local
 * clock: nodes' clocks must agree to well within it. A longer one is cut to max_age.
 */
export async function createNatsSessionStore(options: NatsSessionStoreOptions = {}): Promise<SessionStore> {
  rejectUnknownOptions("createNatsSessionStore", options, OPTION_KEYS);
  const ttlMs = options.ttlMs ?? 600_000;
  const outageWaitMs = options.outageWaitMs ?? 5_000;
  for (const [name, value, min] of [["ttlMs", ttlMs, 1_000], ["outageWaitMs", outageWaitMs, 0]] as const) {
    if (!Number.isSafeInteger(value) || value < min) throw new ProtocastError(Code.InvalidArgument, `${name} must be an integer >= ${min}, got ${value}`);
  }
  const bucket = options.bucket ?? "protocast_sessions";
  if (!/^[-\w]+$/.test(bucket)) throw new ProtocastError(Code.InvalidArgument, `bucket must be letters, digits, "_" and "-", got ${JSON.stringify(bucket)}`);
  const nc = options.connection ?? (await connectNats(options.servers, outageWaitMs));
  const timeout = Math.max(100, Math.min(2_000, outageWaitMs));
  const store = new NatsSessionStore(nc, options.connection === undefined, await jetstreamManager(nc, { timeout }), jetstream(nc, { timeout }), bucket, ttlMs, outageWaitMs);
  return readyOrClosed(store, () => store.ensureBucket());
}

/** What the bucket holds of a session. */
interface Rec {
  readonly owner: string;
  readonly token: string;
  readonly principal: string;
  readonly outSeq: number;
  readonly inSeq: number;
  readonly subs: string;
  readonly calls: string;
  /** Local clock, ms: the record counts as gone from then on. */
  readonly expiresAt: number;
  /** seq increasing. */
  readonly frames: readonly (readonly [number, Uint8Array])[];
}

/** A key's last message: its stream sequence (0: none) and the record, unless a delete marker. */
interface Known {
  readonly revision: number;
  readonly record: Rec | undefined;
}

/** What a change decided: its result, and the record to store (null: delete; undefined: nothing). */
interface Decision<T> {
  readonly result: T;
  readonly next?: Rec | null;
}

/** Changes that find the key changed under them try again this often before giving up. */
const maxConflicts = 8;
/** Sessions whose last written revision the store remembers. */
const maxKnown = 16_384;

/** Another node changed the key after it was read. */
class Conflict extends Error {}

class NatsSessionStore implements SessionStore {
  private readonly stream: string;
  /** Session id -> what this store last wrote of it; least recently used first. */
  private readonly known = new Map<string, Known>();
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly owned: boolean,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly bucket: string,
    private readonly ttlMs: number,
    private readonly outageWaitMs: number,
  ) {
    this.stream = `KV_${bucket}`;
  }

  /** Creates the bucket, or brings an existing one's max_age to ttlMs. */
  ensureBucket(): Promise<void> {
    return ensureKvBucket(this.jsm, this.bucket, this.ttlMs);
  }

  private subject(id: string): string {
    return `$KV.${this.bucket}.s${Buffer.from(id, "utf8").toString("base64url")}`;
  }

  async write(owner: string, writes: readonly SessionWrite[], ttlMs: number): Promise<boolean[]> {
    if (this.closed) throw brokerClosed();
    const ttl = checkTtl(ttlMs, this.ttlMs);
    const deadline = Date.now() + this.outageWaitMs;
    // Sessions are written side by side; two writes of one session, one after the other.
    const tails = new Map<string, Promise<unknown>>();
    return Promise.all(
      writes.map((w) => {
        const run = (tails.get(w.id) ?? Promise.resolve()).then(() =>
          this.change(w.id, "session write", deadline, true, (r, now): Decision<boolean> => {
            if (r === undefined ? w.create === undefined : r.owner !== owner) return { result: false };
            return { result: true, next: applyWrite(r, owner, w, now + ttl) };
          }),
        );
        tails.set(w.id, run.catch(() => undefined));
        return run;
      }),
    );
  }

  async claim(sessionId: string, owner: string, ttlMs: number): Promise<StoredSession | undefined> {
    if (this.closed) throw brokerClosed();
    const ttl = checkTtl(ttlMs, this.ttlMs);
    // Always a fresh read: the session is usually another node's, changed since this one saw it.
    return this.change(sessionId, "session claim", Date.now() + this.outageWaitMs, false, (r, now): Decision<StoredSession | undefined> => {
      if (r === undefined) return { result: undefined };
      const frames = r.frames.map(([seq, b]) => [seq, b.slice()] as const);
      const result = { id: sessionId, token: r.token, principal: r.principal, outSeq: r.outSeq, inSeq: r.inSeq, frames, subs: r.subs, calls: r.calls };
      return { result, next: { ...r, owner, expiresAt: now + ttl } };
    });
  }

  async remove(owner: string, sessionIds: readonly string[]): Promise<void> {
    if (this.closed) throw brokerClosed();
    const deadline = Date.now() + this.outageWaitMs;
    await Promise.all(
      Array.from(new Set(sessionIds), (id) =>
        this.change(id, "session remove", deadline, true, (r): Decision<void> => (r?.owner === owner ? { result: undefined, next: null } : { result: undefined })),
      ),
    );
  }

  /**
   * Reads the session (or takes what this store last wrote of it), lets `decide` look at the
   * live record, and stores its decision under the revision read. On a conflict, reads afresh
   * and decides again.
   */
  private async change<T>(id: string, what: string, deadline: number, useKnown: boolean, decide: (r: Rec | undefined, now: number) => Decision<T>): Promise<T> {
    const subject = this.subject(id);
    let remembered = useKnown;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw brokerClosed();
      const cached = remembered ? this.known.get(id) : undefined;
      const k = cached ?? (await this.read(subject, what, deadline));
      const now = Date.now();
      const d = decide(k.record !== undefined && k.record.expiresAt > now ? k.record : undefined, now);
      if (d.next === undefined) {
        if (cached === undefined) return d.result;
        // What this store wrote may be stale (another node's claim): refuse only on a fresh read.
        this.known.delete(id);
        remembered = false;
        continue;
      }
      try {
        const revision = await this.publish(subject, k.revision, d.next, what, deadline);
        this.known.delete(id);
        if (d.next !== null) {
          this.known.set(id, { revision, record: d.next });
          if (this.known.size > maxKnown) this.known.delete(this.known.keys().next().value!);
        }
        return d.result;
      } catch (e) {
        this.known.delete(id);
        if (!(e instanceof Conflict)) throw e;
        remembered = false;
        if (attempt >= maxConflicts || Date.now() >= deadline) {
          throw new ProtocastError(Code.Unavailable, `${what}: too much contention on the session`, { reason: "contention", cause: e });
        }
        if (attempt > 2) await sleep(Math.random() * 5 * attempt);
      }
    }
  }

  /** The key's last message; retried (reads are safe to repeat) until the deadline. */
  private async read(subject: string, what: string, deadline: number): Promise<Known> {
    for (let attempt = 0; ; attempt++) {
      try {
        const m = await this.jsm.direct.getMessage(this.stream, { last_by_subj: subject });
        if (m === null) return { revision: 0, record: undefined };
        const op = m.header?.get("KV-Operation") ?? "";
        return { revision: m.seq, record: op === "DEL" || op === "PURGE" ? undefined : decodeRecord(m.data) };
      } catch (e) {
        await this.pause(what, e, attempt, deadline, false);
      }
    }
  }

  /** Stores `next` (null: a delete marker) if `revision` is still the key's last; returns the new revision. */
  private async publish(subject: string, revision: number, next: Rec | null, what: string, deadline: number): Promise<number> {
    const data = next === null ? new Uint8Array(0) : encodeRecord(next);
    const limit = this.nc.info?.max_payload ?? Infinity;
    if (data.byteLength > limit) {
      throw new ProtocastError(Code.ResourceExhausted, `${what}: the session's record takes ${data.byteLength} bytes, over the server's max_payload of ${limit}`, { reason: "session_too_large" });
    }
    let h;
    if (next === null) {
      h = headers();
      h.set("KV-Operation", "DEL");
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const timeout = Math.max(1, Math.min(2_000, deadline - Date.now()));
        const ack = await this.js.publish(subject, data, { expect: { lastSubjectSequence: revision }, timeout, ...(h === undefined ? {} : { headers: h }) });
        return ack.seq;
      } catch (e) {
        if (e instanceof JetStreamApiError && e.code === 10071) throw new Conflict(); // wrong last sequence
        // No stream answered (NATS restarted without its data): nothing was stored, go again.
        await this.pause(what, e, attempt, deadline, !streamMissing(e));
      }
    }
  }

  /** Decides whether a failed request goes again; throws when it does not. */
  private async pause(what: string, e: unknown, attempt: number, deadline: number, mayHaveRun: boolean): Promise<void> {
    if (this.closed || e instanceof ClosedConnectionError) throw brokerClosed();
    if (e instanceof ProtocastError) throw e;
    const missing = streamMissing(e);
    if (e instanceof JetStreamApiError && !missing) throw ProtocastError.from(e, Code.Internal);
    // A publish that timed out may still be stored; the caller writes the session again, and a
    // frame written twice under one seq is kept once.
    if (mayHaveRun) throw outcomeUnknown(what, e);
    if (Date.now() >= deadline) throw unavailable(what, this.outageWaitMs, e);
    if (missing) await this.ensureBucket().catch(() => undefined);
    await sleep(Math.min(50 * (attempt + 1), 250, Math.max(0, deadline - Date.now())));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.known.clear();
    if (this.owned) await this.nc.close();
  }
}

/** No stream answered, or none by that name: nothing was stored. */
function streamMissing(e: unknown): boolean {
  // js.publish() reports no responders as JetStreamNotEnabled, which the package does not export.
  const noResponders = (x: unknown): boolean => x instanceof RequestError && x.isNoResponders();
  return noResponders(e) || (e instanceof Error && noResponders(e.cause)) || (e instanceof JetStreamApiError && e.code === 10059);
}

function checkTtl(ttlMs: number, max: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ProtocastError(Code.InvalidArgument, `ttlMs must be positive, got ${ttlMs}`);
  return Math.min(ttlMs, max);
}

/** The record after a write; frames keyed by seq (one written again replaces the earlier). */
function applyWrite(r: Rec | undefined, owner: string, w: SessionWrite, expiresAt: number): Rec {
  const frames = r === undefined ? [] : r.frames.slice();
  for (const [seq, bytes] of w.frames) {
    const copy = [seq, bytes.slice()] as const;
    if (frames.length === 0 || frames[frames.length - 1]![0] < seq) {
      frames.push(copy);
      continue;
    }
    const at = frames.findIndex(([s]) => s >= seq);
    frames.splice(at, frames[at]![0] === seq ? 1 : 0, copy);
  }
  return {
    owner,
    token: w.create?.token ?? r?.token ?? "",
    principal: w.create?.principal ?? r?.principal ?? "",
    outSeq: w.outSeq,
    inSeq: w.inSeq,
    subs: w.subs ?? r?.subs ?? "[]",
    calls: w.calls ?? r?.calls ?? "[]",
    expiresAt,
    frames: frames.filter(([seq]) => seq > w.ackSeq),
  };
}

const recordVersion = 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * The value of a session's key, big-endian:
 *   u8 version, then owner, token, principal, subs, calls as (u32 n, UTF-8[n]),
 *   f64 outSeq, inSeq, expiresAt, u32 frame count, per frame f64 seq, u32 n, bytes[n].
 */
function encodeRecord(r: Rec): Uint8Array {
  const texts = [r.owner, r.token, r.principal, r.subs, r.calls].map((s) => utf8.encode(s));
  let size = 1 + 3 * 8 + 4;
  for (const t of texts) size += 4 + t.byteLength;
  for (const [, b] of r.frames) size += 12 + b.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setUint8(at++, recordVersion);
  const bytes = (b: Uint8Array): void => {
    view.setUint32(at, b.byteLength);
    out.set(b, at + 4);
    at += 4 + b.byteLength;
  };
  const f64 = (n: number): void => {
    view.setFloat64(at, n);
    at += 8;
  };
  for (const t of texts) bytes(t);
  f64(r.outSeq);
  f64(r.inSeq);
  f64(r.expiresAt);
  view.setUint32(at, r.frames.length);
  at += 4;
  for (const [seq, b] of r.frames) {
    f64(seq);
    bytes(b);
  }
  return out;
}

function decodeRecord(b: Uint8Array): Rec {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  const need = (n: number): void => {
    if (at + n > b.byteLength) throw new ProtocastError(Code.Internal, "malformed session record: truncated", { reason: "session_store" });
  };
  const u32 = (): number => {
    need(4);
    at += 4;
    return view.getUint32(at - 4);
  };
  const f64 = (): number => {
    need(8);
    at += 8;
    return view.getFloat64(at - 8);
  };
  const bytes = (): Uint8Array => {
    const n = u32();
    need(n);
    at += n;
    return b.slice(at - n, at);
  };
  const text = (): string => fromUtf8.decode(bytes());
  need(1);
  const version = view.getUint8(at++);
  if (version !== recordVersion) throw new ProtocastError(Code.Internal, `malformed session record: version ${version}`, { reason: "session_store" });
  const [owner, token, principal, subs, calls] = [text(), text(), text(), text(), text()];
  const outSeq = f64();
  const inSeq = f64();
  const expiresAt = f64();
  const frames: (readonly [number, Uint8Array])[] = [];
  for (let n = u32(); n > 0; n--) frames.push([f64(), bytes()]);
  if (at !== b.byteLength) throw new ProtocastError(Code.Internal, "malformed session record: trailing bytes", { reason: "session_store" });
  return { owner, token, principal, outSeq, inSeq, subs, calls, expiresAt, frames };
}
