import { connectNats, readyOrClosed } from "./connect.js";
import { randomBytes } from "node:crypto";
import { headers, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { BeginOptions, IdempotencyStore, StoreBeginResult } from "../../broker/idempotency-store.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import type { Outcome, RequestFingerprint } from "../../session/idempotency-window.js";
import { ensureKvBucket } from "./nats-kv.js";
import { brokerClosed, sleep, unavailable } from "../shared/broker-errors.js";
import {
  ByteReader,
  ByteWriter,
  checkStoreOptions,
  decodeOutcome,
  encodeOutcome,
  pollBegin,
  runToken,
  stringBytes,
  type Attempt,
  type SharedStoreOptions,
} from "../shared/idempotency-shared.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

export interface NatsIdempotencyOptions extends SharedStoreOptions {
  /** Default "127.0.0.1:4222". Unused when `connection` is given. */
  readonly servers?: string | string[];
  /** A connection to use instead of opening one; close() leaves it open. */
  readonly connection?: NatsConnection;
  /** The KV bucket (stream KV_<bucket>). Default "protocast_idempotency". */
  readonly bucket?: string;
}

const OPTION_KEYS = optionKeys<NatsIdempotencyOptions>()("servers", "connection", "bucket", "ttlMs", "pollMs", "outageWaitMs");

/**
 * A store on a JetStream KV bucket, written with @nats-io/jetstream alone (@nats-io/kv is not
 * a dependency): stream KV_<bucket> on subjects $KV.<bucket>.>, one message kept per key,
 * laid out as the KV clients lay a bucket out, so KV tools can list and watch it.
 *
 * The key of (principal, key) is "p<P>.k<K>", P and K the base64url of their bytes. The
 * first begin() publishes with an expected last sequence of 0 (kv.create()); every later
 * change states the revision it read (kv.update()), so of two nodes racing for a key, or for
 * an expired lease, one wins and the other reads again. The rest is as in the Redis store:
 * duplicates re-read a running record every pollMs; one waiting when the request is forgotten
 * gets forget()'s transient outcome, one that first reads the key after the forget() runs.
 *
 * nats-server 2.9 has no per-message TTL (@nats-io/jetstream 3.x can send a Nats-TTL header,
 * but only servers from 2.11, on streams with allow_msg_ttl, honour it), so the bucket's
 * max_age is ttlMs and the server itself drops every record that age: a record
 * disappears ttlMs after its last change whatever its state. Hence ttlMs must exceed the
 * longest lease (a running record would vanish under a live request), every node must use the
 * same ttlMs (an existing bucket's max_age is set to it), and a forgotten record stays (inert:
 * the next begin() replaces it) for ttlMs. The number of keys per principal is not bounded
 * here: the bucket holds what ttlMs lets live. Leases are compared with the local clock, so
 * nodes' clocks must agree to well within the lease margin.
 *
 * A node killed mid-request would hold its keys to the end of their leases. Each store answers
 * requests on `_PROTOCAST.idem.<bucket>.<holder>` and names that holder in its run tokens; a
 * duplicate whose request there meets "no responders" (NATS drops a connection's
 * subscriptions as soon as it closes) takes the key over at once.
 */
export async function createNatsIdempotencyStore(options: NatsIdempotencyOptions = {}): Promise<IdempotencyStore> {
  rejectUnknownOptions("createNatsIdempotencyStore", options, OPTION_KEYS);
  const o = checkStoreOptions(options);
  const bucket = options.bucket ?? "protocast_idempotency";
  if (!/^[-\w]+$/.test(bucket)) throw new ProtocastError(Code.InvalidArgument, `bucket must be letters, digits, "_" and "-", got ${JSON.stringify(bucket)}`);
  const nc = options.connection ?? (await connectNats(options.servers, o.outageWaitMs));
  const timeout = Math.max(100, Math.min(2_000, o.outageWaitMs));
  const store = new NatsIdempotencyStore(nc, options.connection === undefined, await jetstreamManager(nc, { timeout }), jetstream(nc, { timeout }), bucket, o);
  return readyOrClosed(store, async () => {
    await store.ensureBucket();
    await store.showAlive();
  });
}

const State = { Running: 0, Done: 1, Forgotten: 2 } as const;
type State = (typeof State)[keyof typeof State];

/** A record's value: state, token, target, digest, lease end (ms), then the outcome (Done, Forgotten). */
interface StoredRecord {
  readonly state: State;
  /** Of the begin() that runs it; complete() and forget() only touch their own run. */
  readonly token: string;
  readonly target: Uint8Array;
  readonly digest: number;
  readonly leaseEnd: number;
  readonly outcome: Uint8Array;
}

function encodeRecord(r: StoredRecord): Uint8Array {
  return new ByteWriter().u8(r.state).text(r.token).bytes(r.target).f64(r.digest).f64(r.leaseEnd).rest(r.outcome).finish();
}

function decodeRecord(b: Uint8Array): StoredRecord {
  const r = new ByteReader(b);
  const state = r.u8() as State;
  if (state > State.Forgotten) throw new ProtocastError(Code.Internal, `malformed idempotency record: state ${state}`, { reason: "idempotency_store" });
  return { state, token: r.text(), target: r.bytes(), digest: r.f64(), leaseEnd: r.f64(), outcome: r.rest() };
}

/** A key's last message: its stream sequence (0: none) and the record, if it is one. */
interface Read {
  readonly revision: number;
  readonly record: StoredRecord | undefined;
}

/** Another node changed the key after it was read. */
class Raced extends Error {}

class NatsIdempotencyStore implements IdempotencyStore {
  private readonly stream: string;
  /** Subject -> token of the request this store runs under it (see the Redis store). */
  private readonly running = new Map<string, string>();
  /** This store's name in run tokens; undefined until its liveness subject is subscribed. */
  private readonly holder = randomBytes(9).toString("base64url");
  private liveUp = false;
  private live: Subscription | undefined;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly owned: boolean,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly bucket: string,
    private readonly o: Required<SharedStoreOptions>,
  ) {
    this.stream = `KV_${bucket}`;
  }

  /** Creates the bucket, or brings an existing one's max_age to ttlMs. */
  ensureBucket(): Promise<void> {
    return ensureKvBucket(this.jsm, this.bucket, this.o.ttlMs);
  }

  /** Answers liveness probes from then on (the client renews the subscription after reconnects). */
  async showAlive(): Promise<void> {
    this.live = this.nc.subscribe(this.liveSubject(this.holder), {
      callback: (err, msg) => {
        if (err === null) msg.respond();
      },
    });
    await this.nc.flush();
    this.liveUp = true;
  }

  private liveSubject(holder: string): string {
    return `_PROTOCAST.idem.${this.bucket}.${holder}`;
  }

  /** True when the store that holds a run is gone: its subject has no responders any more. */
  private async holderGone(holder: string): Promise<boolean> {
    if (holder === this.holder || this.nc.isClosed()) return false;
    try {
      await this.nc.request(this.liveSubject(holder), new Uint8Array(0), { timeout: 1_000 });
      return false;
    } catch (e) {
      return (e as { isNoResponders?: () => boolean }).isNoResponders?.() === true;
    }
  }

  private subject(principal: string, key: string): string {
    return `$KV.${this.bucket}.p${stringBytes(principal).toString("base64url")}.k${stringBytes(key).toString("base64url")}`;
  }

  begin(principal: string, key: string, request: RequestFingerprint, options: BeginOptions): Promise<StoreBeginResult> {
    const subject = this.subject(principal, key);
    const token = runToken(this.liveUp ? this.holder : undefined);
    const target = stringBytes(request.target);
    const leaseMs = Math.max(1, options.leaseMs);
    const attempt = (seen: string, takeOver: string): Promise<Attempt> =>
      this.retrying(async () => {
        const { revision, record: r } = await this.read(subject);
        if (r?.state === State.Forgotten && r.token === seen) return { kind: "done", outcome: decodeOutcome(r.outcome) };
        const runs = (): Attempt => {
          this.running.set(subject, token);
          return { kind: "run" };
        };
        const run = async (): Promise<Attempt> => {
          const record = { state: State.Running, token, target, digest: request.digest, leaseEnd: Date.now() + leaseMs, outcome: new Uint8Array(0) };
          await this.write(subject, revision, encodeRecord(record));
          return runs();
        };
        if (r === undefined || r.state === State.Forgotten) return run();
        if (!target.equals(r.target) || r.digest !== request.digest) return { kind: "conflict" };
        if (r.state === State.Done) return { kind: "done", outcome: decodeOutcome(r.outcome) };
        if (r.token === token) return runs(); // an earlier attempt of this begin() wrote it
        // Its lease ran out, or its holder is gone: take the key over (the write checks the revision).
        if (r.leaseEnd <= Date.now() || (takeOver !== "" && r.token === takeOver)) return run();
        return { kind: "wait", token: r.token };
      });
    const release = (): Promise<void> => this.finish(principal, key, undefined);
    return pollBegin(attempt, release, this.o.pollMs, options.signal, (holder) => this.holderGone(holder));
  }

  complete(principal: string, key: string, outcome: Outcome): Promise<void> {
    return this.finish(principal, key, { state: State.Done, outcome });
  }

  forget(principal: string, key: string, outcome: Outcome): Promise<void> {
    return this.finish(principal, key, { state: State.Forgotten, outcome });
  }

  /** Ends this store's run of a key: done, forgotten, or with no end deleted (a release). */
  private async finish(principal: string, key: string, end: { state: State; outcome: Outcome } | undefined): Promise<void> {
    const subject = this.subject(principal, key);
    const token = this.running.get(subject);
    if (token === undefined) return;
    this.running.delete(subject);
    await this.retrying(async () => {
      const { revision, record: r } = await this.read(subject);
      if (r?.state !== State.Running || r.token !== token) return; // taken over, or already written
      if (end === undefined) await this.write(subject, revision, new Uint8Array(0), true);
      else await this.write(subject, revision, encodeRecord({ ...r, state: end.state, leaseEnd: 0, outcome: encodeOutcome(end.outcome) }));
    });
  }

  private async read(subject: string): Promise<Read> {
    const m = await this.jsm.direct.getMessage(this.stream, { last_by_subj: subject });
    if (m === null) return { revision: 0, record: undefined };
    const op = m.header?.get("KV-Operation") ?? "";
    return { revision: m.seq, record: op === "DEL" || op === "PURGE" ? undefined : decodeRecord(m.data) };
  }

  /** Replaces revision `revision` of the key (0: none); throws Raced when it is not the last. */
  private async write(subject: string, revision: number, data: Uint8Array, deleteMarker = false): Promise<void> {
    let h;
    if (deleteMarker) {
      h = headers();
      h.set("KV-Operation", "DEL");
    }
    try {
      await this.js.publish(subject, data, { expect: { lastSubjectSequence: revision }, ...(h === undefined ? {} : { headers: h }) });
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === 10071) throw new Raced(); // wrong last sequence
      throw e;
    }
  }

  /**
   * Runs `work` until it succeeds or outageWaitMs is spent. A race reads again at once;
   * timeouts and lost connections are retried, a missing stream (NATS restarted without its
   * data) is created again. Repeating is safe: a write whose answer was lost shows up on the
   * next read with this store's own token.
   */
  private async retrying<T>(work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.o.outageWaitMs;
    for (let attempt = 0; ; attempt++) {
      if (this.closed || this.nc.isClosed()) throw brokerClosed();
      try {
        return await work();
      } catch (e) {
        if (e instanceof Raced) {
          if (attempt > 3) await sleep(Math.random() * Math.min(attempt, 20));
          if (Date.now() < deadline) continue;
          throw new ProtocastError(Code.Unavailable, "idempotency store: too much contention on the key", { reason: "contention", cause: e });
        }
        if (e instanceof ProtocastError) throw e;
        if (e instanceof JetStreamApiError && e.code !== 10059) throw ProtocastError.from(e, Code.Internal);
        if (Date.now() >= deadline) throw unavailable("idempotency store", this.o.outageWaitMs, e);
        if (e instanceof JetStreamApiError) await this.ensureBucket().catch(() => undefined);
        await sleep(Math.min(50 * (attempt + 1), 250, Math.max(0, deadline - Date.now())));
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live?.unsubscribe();
    if (this.owned) await this.nc.close();
  }
}
