import { Code, codeName } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { ChannelDef } from "../service/define.js";
import { hashBytes } from "../session/hash.js";
import type { Outcome } from "../session/idempotency-window.js";
import { Sequencer } from "../session/sequencer.js";
import { SESSION_TRANSITIONS, allows, type SessionPhase } from "../session/states.js";
import { RunningCall } from "./running-call.js";
import type { NewerFrameEnvelope } from "../wire/decode.js";
import { encodeEnvelope } from "../wire/encode.js";
import type { Call, Envelope, Frame, Member, Publish, Subscribe, Unsubscribe } from "../wire/envelope.js";
import type { AuthorizeRequest, CallContext, Principal } from "./context.js";
import type { HubMember } from "./hub.js";
import { bump } from "./counters.js";
import { randomId } from "./ids.js";
import { encodeChannelPosition, splitMembers } from "./answer-size.js";
import { requestFieldProblem } from "./field-limits.js";
import { hasScope } from "./scopes.js";
import type { SessionHost, SessionLink } from "./session-host.js";
import type { SessionWrite } from "../broker/session-store.js";
import { epochChangeGaps } from "../broker/epoch-change.js";
import type { SessionSnapshot } from "../session/snapshot.js";
import type { ResumeCandidate } from "../session/resume.js";

/** A request the client is owed an answer for, as the session store keeps it. */
type PendingRequest =
  | { readonly k: "call" | "pub"; readonly id: number }
  | {
      readonly k: "sub";
      readonly id: number;
      readonly method: string;
      readonly channel: string;
      readonly recover: boolean;
      readonly epoch: string;
      readonly offset: number;
    };

function parseList<T>(json: string): T[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

/** The principal as JSON can carry it. */
export function principalRecord(p: Principal): Principal {
  return {
    id: p.id,
    scopes: Array.from(p.scopes),
    ...(p.expiresAtMs !== undefined ? { expiresAtMs: p.expiresAtMs } : {}),
    ...(p.anonymous === true ? { anonymous: true } : {}),
    ...(p.claims !== undefined ? { claims: { ...p.claims } } : {}),
  };
}

/** Events read from history per request while recovering a subscription. */
const HISTORY_PAGE = 500;

/** Live channel frames held for one subscription during a re-sync before the client is cut off. */
const MAX_HELD_FRAMES = 10_000;

/**
 * Added to a request's deadline to make its idempotency lease: past it, another node may take
 * the key over (the first one's node is presumed dead).
 */
const LEASE_MARGIN_MS = 5_000;

/** Longest idempotency key accepted, in bytes. */
export const MAX_IDEMPOTENCY_KEY_BYTES = 128;

/** Error codes after which an idempotency record is dropped, so that a retry runs again. */
const TRANSIENT = new Set([Code.Canceled, Code.DeadlineExceeded, Code.Unavailable, Code.Aborted, Code.ResourceExhausted]);

interface Sub {
  readonly def: ChannelDef;
  readonly member: HubMember;
  /** While true, live frames are held until the Subscribed answer and replay are out. */
  holding: boolean;
  held: { frame: Uint8Array; offset: number }[];
  /** Epoch and highest offset the client acknowledged; a resume replays from there. */
  epoch: string;
  ackedOffset: number;
}

/**
 * Server side of one session. It outlives its connection for a grace period: running calls
 * go on, their answers wait in the retransmission buffer, and the session stays in its
 * channels. A Resume on a new connection picks it up where it was.
 */
export class ServerSession {
  readonly id: string;
  readonly resumeToken: string;
  /** Set once the session was handed to another node; answers of calls still running here follow it. */
  movedTo: string | undefined;
  /** How the session appears in presence lists: its id, so that a client can find itself. */
  get clientId(): string {
    return this.id;
  }
  conn: SessionLink | undefined;
  /** When the session lost its connection; 0 while attached. */
  detachedAt = 0;
  /** Where the session is in SESSION_TRANSITIONS (session/states.ts, PROTOCOL.md 8.7). */
  private phase: SessionPhase = "new";
  /**
   * Since when the client owes an acknowledgement: the oldest unacknowledged frame was sent, or
   * the acknowledgement last advanced, at this time; 0 when nothing waits (PROTOCOL.md 4.5).
   */
  ackWaitSince = 0;
  /** Set when frames were lost while detached; a Resume then fails with "overflow". */
  lost = false;
  ended = false;
  /** Both directions' numbering, acknowledgements and the retransmission buffer (session/sequencer.ts). */
  readonly seq: Sequencer<Uint8Array>;

  // ---- with a shared session store (PROTOCOL.md, scale-out) ----------------------------
  /** Frames assigned a seq and not yet stored: they go out once the store has them. */
  private unstored: [number, Uint8Array][] = [];
  /** Highest seq the store has; frames up to it may be sent. */
  private storedSeq = 0;
  /** Highest client seq the store has; acknowledgements never claim more. */
  private storedInSeq = 0;
  /** Frames handed to the write in flight, and what else it carries. */
  private writingFrames = 0;
  private needsCreate = true;
  private subsChanged = true;
  private requestsChanged = true;
  /** Requests received and not yet answered, by id: a node that takes over answers them. */
  private readonly requests = new Map<number, PendingRequest>();
  /** Resolvers waiting for the store to catch up with a seq. */
  private storedWaiters: { seq: number; resolve: () => void }[] = [];
  /** Set when another node took the session over in the store. */
  disownedByStore = false;
  /** Set when the session was continued from the store after its node died. */
  fromStore = false;
  private readonly subs = new Map<string, Sub>();
  private readonly syncing = new Map<string, Promise<void>>();
  /** Running calls by id. */
  private readonly inflight = new Map<number, RunningCall>();

  constructor(
    private readonly core: SessionHost<ServerSession>,
    public principal: Principal,
    restored?: { readonly id: string; readonly token: string },
  ) {
    this.id = restored?.id ?? `${core.nodeId}.${randomId()}`;
    this.resumeToken = restored?.token ?? randomId(24);
    this.seq = new Sequencer(core.retransmitLimits);
  }

  // ---- moving between nodes ------------------------------------------------------------

  /** Everything another node needs to continue this session. */
  export(): SessionSnapshot {
    return {
      id: this.id,
      token: this.resumeToken,
      principal: JSON.stringify(principalRecord(this.principal)),
      outSeq: this.seq.outSeq,
      inSeq: this.seq.inSeq,
      frames: this.seq.log.all().map((f) => [f.seq, f.item] as const),
      subs: JSON.stringify(this.subRecords()),
      calls: JSON.stringify(Array.from(this.requests.values())),
    };
  }

  /**
   * Hands the session to another node: it leaves this node's channels without a leave event
   * (the new node speaks for it), and answers of calls still running here are forwarded.
   */
  moveTo(node: string): void {
    this.enter("moved");
    this.movedTo = node;
    for (const [channel, sub] of Array.from(this.subs)) {
      this.subs.delete(channel);
      this.core.hub.leave(channel, sub.member, node);
    }
    this.seq.log.clear();
    this.conn = undefined;
  }

  /**
   * Continues a session from a snapshot, call before attach(): one another node handed over,
   * or one claimed from the session store after its node died. Frames, counters, channels and
   * the requests still unanswered come back; from the store, the store already has all of it.
   */
  restore(snapshot: SessionSnapshot, from: "node" | "store"): void {
    this.seq.restore(snapshot.outSeq, snapshot.inSeq, snapshot.frames.map(([seq, bytes]) => [seq, bytes, bytes.byteLength] as const));
    for (const [channel, path, epoch, ackedOffset] of parseList<[string, string, string, number]>(snapshot.subs)) {
      const def = this.core.lookup(path);
      if (def === undefined || def.kind !== "channel" || def.parse(channel) === undefined) continue;
      const sub = this.newSub(def);
      sub.epoch = epoch;
      sub.ackedOffset = ackedOffset;
      this.subs.set(channel, sub);
    }
    for (const r of parseList<PendingRequest>(snapshot.calls)) this.requests.set(r.id, r);
    if (from === "store") {
      this.fromStore = true;
      this.storedSeq = snapshot.outSeq;
      this.storedInSeq = snapshot.inSeq;
      this.needsCreate = false;
    }
  }

  /** After a handover, once attached: joins every restored channel here and re-syncs it. */
  rejoinAll(): void {
    for (const [channel, sub] of this.subs) {
      const reliable = sub.def.rules.delivery !== "at-most-once";
      const { epoch, ackedOffset } = sub;
      this.enqueueSync(channel, async () => {
        try {
          await this.core.hub.join(sub.def, channel, sub.member);
        } catch {
          this.leave(channel);
          this.sendSequenced({ case: "unsubscribed", value: { id: 0, channel, code: Code.Unavailable, reason: "resubscribe_failed" } });
          return;
        }
        await this.sync(sub, channel, 0, reliable, epoch, ackedOffset);
      });
    }
  }

  /**
   * After a handover with a session store: the store has frames up to `storedOutSeq`; the
   * rest of the log is written from here before it goes out.
   */
  reconcile(storedOutSeq: number, storedInSeq: number, missing: boolean): void {
    this.storedSeq = storedOutSeq;
    this.storedInSeq = Math.min(storedInSeq, this.seq.inSeq);
    this.needsCreate = missing;
    this.subsChanged = this.requestsChanged = true;
    this.unstored = this.seq.log.all().filter((f) => f.seq > storedOutSeq).map((f): [number, Uint8Array] => [f.seq, f.item]);
    this.writingFrames = 0;
    if (this.unstored.length > 0 || missing) this.core.keeper?.mark(this);
  }

  /** An answer of a call that was still running on the node this session came from. */
  forwarded(frame: Frame): void {
    this.sendSequenced(frame);
  }

  get member(): Member {
    return { clientId: this.clientId, principal: this.principal.id };
  }

  /** Calls still running. */
  get running(): number {
    return this.inflight.size;
  }

  get lastAssignedSeq(): number {
    return this.seq.outSeq;
  }

  /** The session as the resume decision sees it (session/resume.ts). */
  asResumeCandidate(upTo: number = this.seq.outSeq): ResumeCandidate {
    return {
      token: this.resumeToken,
      principal: this.principal.id,
      anonymous: this.principal.anonymous === true,
      lastSentSeq: upTo,
      lost: this.lost,
      holdsAfter: (lastSeq) => this.seq.canResumeFrom(lastSeq, upTo),
    };
  }

  // ---- attachment ----------------------------------------------------------------------

  get state(): SessionPhase {
    return this.phase;
  }

  /** Moves to `next`; a move the table does not allow is counted, as the bug it is. */
  private enter(next: SessionPhase): void {
    if (!allows(SESSION_TRANSITIONS, this.phase, next)) bump(this.core.counters.stateViolations, `${this.phase}->${next}`);
    this.phase = next;
  }

  attach(conn: SessionLink): void {
    this.enter("attached");
    this.conn = conn;
    this.detachedAt = 0;
    // A new connection starts the ack timeout afresh for the frames it is about to resend.
    this.ackWaitSince = this.seq.log.size > 0 ? this.core.now() : 0;
  }

  detach(now: number): void {
    this.enter("detached");
    this.conn = undefined;
    this.detachedAt = now;
    // Until the re-sync that follows a resume, live events are held back, so that they never
    // overtake the events replayed from history.
    for (const sub of this.subs.values()) {
      sub.holding = true;
      sub.held = [];
    }
  }

  /** Sends, in order, every buffered frame after `lastSeq`; false when some are gone. */
  replayAfter(lastSeq: number): boolean {
    // With a store, frames not stored yet go out when they are, in order, after these.
    const upTo = this.core.keeper === undefined ? this.seq.outSeq : this.storedSeq;
    if (this.lost) return false;
    const frames = lastSeq >= upTo ? [] : this.seq.resumeFrom(lastSeq, upTo);
    if (frames === undefined) return false;
    this.core.counters.retransmits += frames.length;
    for (const f of frames) this.conn?.sendBytes(f.item);
    return true;
  }

  /** Ends the session: leaves channels (leave events go out), aborts calls, frees buffers. */
  end(): void {
    if (this.ended) return;
    this.enter("ended");
    this.ended = true;
    // An exactly-once call keeps running to its deadline: its outcome is recorded under its
    // idempotency key, so the client's retry on a new session gets it instead of a second run.
    for (const c of this.inflight.values()) if (!c.dedupe) c.abort(new ProtocastError(Code.Canceled, "session ended"));
    this.inflight.clear();
    for (const channel of Array.from(this.subs.keys())) this.leave(channel);
    this.seq.log.clear();
    this.conn = undefined;
  }

  // ---- sending -------------------------------------------------------------------------

  /** Sends a frame addressed to this session: numbered, buffered until acknowledged. */
  sendSequenced(frame: Frame): void {
    if (this.movedTo !== undefined) {
      this.core.cluster?.forward(this.movedTo, this.id, encodeEnvelope({ seq: 0, ackSeq: 0, frame }));
      return;
    }
    if (this.ended) return;
    const seq = this.seq.outSeq + 1;
    let bytes = encodeEnvelope({ seq, ackSeq: this.seq.inSeq, frame });
    if (bytes.byteLength > this.core.limits.maxEnvelopeBytes && frame.case === "reply") {
      // The client could not take it (PROTOCOL.md 3.5): it gets an Error in the Reply's place.
      const message = `the reply is ${bytes.byteLength} bytes; the limit is ${this.core.limits.maxEnvelopeBytes}`;
      const value = { id: frame.value.id, code: Code.ResourceExhausted, message, reason: "reply_too_large", retryAfterMs: 0 };
      frame = { case: "error", value };
      bytes = encodeEnvelope({ seq, ackSeq: this.seq.inSeq, frame });
    }
    if (this.ackWaitSince === 0) this.ackWaitSince = this.core.now();
    const keeper = this.core.keeper;
    if (keeper !== undefined) this.answered(frame);
    else this.seq.ackSent();
    this.seq.number(bytes, bytes.byteLength);
    if (this.seq.log.overflowing) {
      if (this.conn !== undefined) {
        // The client is not acknowledging: close it before anything is dropped, so that it
        // can resume and still get every frame.
        this.conn.close(CloseCode.SlowConsumer, "retransmission buffer full");
      } else {
        this.lost = true;
        this.seq.log.clear();
      }
      return;
    }
    if (keeper !== undefined) {
      // Out only once the store has it: a node that takes over must know every frame sent.
      this.unstored.push([seq, bytes]);
      keeper.mark(this);
      return;
    }
    this.conn?.sendBytes(bytes);
  }

  sendUnsequenced(frame: Frame): void {
    const conn = this.conn;
    if (this.movedTo !== undefined) return;
    if (conn === undefined) return;
    conn.sendBytes(encodeEnvelope({ seq: 0, ackSeq: this.seq.ackSent(this.ackable), frame }));
  }

  /** The highest client seq the client may be told was received. */
  get ackable(): number {
    if (this.core.keeper === undefined) return this.seq.inSeq;
    if (this.storedInSeq < this.seq.inSeq) this.core.keeper.mark(this);
    return this.storedInSeq;
  }

  // ---- the session store ---------------------------------------------------------------

  /** Whether the keeper may write it (not moved, not ended). */
  get storable(): boolean {
    return this.movedTo === undefined && !this.ended && !this.disownedByStore;
  }

  /** What the store lacks, for the keeper's next batch. */
  takeWrite(): SessionWrite {
    const frames = this.unstored.slice(this.writingFrames);
    this.writingFrames = this.unstored.length;
    const p = this.principal;
    const w: SessionWrite = {
      id: this.id,
      create: this.needsCreate ? { token: this.resumeToken, principal: JSON.stringify(principalRecord(p)) } : undefined,
      frames,
      outSeq: frames.at(-1)?.[0] ?? this.storedSeq,
      inSeq: this.seq.inSeq,
      ackSeq: this.seq.log.acked,
      subs: this.subsChanged ? JSON.stringify(this.subRecords()) : undefined,
      calls: this.requestsChanged ? JSON.stringify(Array.from(this.requests.values())) : undefined,
    };
    this.needsCreate = this.subsChanged = this.requestsChanged = false;
    return w;
  }

  /** The store has a write: its frames go out, and acknowledgements may claim its inSeq. */
  stored(w: SessionWrite): void {
    const n = w.frames.length;
    const out = this.unstored.splice(0, n);
    this.writingFrames -= n;
    this.storedSeq = Math.max(this.storedSeq, w.outSeq);
    this.storedInSeq = Math.max(this.storedInSeq, w.inSeq);
    for (const [, bytes] of out) {
      this.seq.ackedToPeer = Math.max(this.seq.ackedToPeer, Math.min(w.inSeq, this.storedInSeq));
      this.conn?.sendBytes(bytes);
    }
    if (this.storedWaiters.length > 0) {
      const ready = this.storedWaiters.filter((x) => x.seq <= this.storedSeq);
      this.storedWaiters = this.storedWaiters.filter((x) => x.seq > this.storedSeq);
      for (const x of ready) x.resolve();
    }
    if (this.seq.ackedToPeer < this.storedInSeq && this.conn !== undefined) this.core.scheduleAck(this);
  }

  /** A write did not reach the store: the keeper writes it again. */
  unwritten(w: SessionWrite): void {
    this.writingFrames -= w.frames.length;
    if (w.create !== undefined) this.needsCreate = true;
    if (w.subs !== undefined) this.subsChanged = true;
    if (w.calls !== undefined) this.requestsChanged = true;
  }

  /** Another node owns the session in the store now: this copy stops, quietly. */
  disowned(): void {
    // A session handed over already belongs elsewhere; its running calls still answer there.
    if (this.disownedByStore || this.movedTo !== undefined) return;
    this.disownedByStore = true;
    const conn = this.conn;
    if (conn !== undefined) {
      conn.session = undefined;
      conn.close(CloseCode.Normal, "resumed elsewhere");
    }
    this.core.dropDisowned(this);
  }

  /** Resolves once every frame assigned so far is stored (at once without a store). */
  whenStored(): Promise<void> | undefined {
    if (this.core.keeper === undefined || this.storedSeq >= this.seq.outSeq) return undefined;
    const seq = this.seq.outSeq;
    return new Promise((resolve) => this.storedWaiters.push({ seq, resolve }));
  }

  private subRecords(): [string, string, string, number][] {
    return Array.from(this.subs, ([channel, sub]): [string, string, string, number] => [channel, sub.def.path, sub.epoch, sub.ackedOffset]);
  }

  /** Notes a request that expects an answer; the store keeps the list (only with a store). */
  private requested(r: PendingRequest): void {
    this.requests.set(r.id, r);
    this.requestsChanged = true;
  }

  private answered(frame: Frame): void {
    let id = 0;
    if (frame.case === "reply" || frame.case === "error" || frame.case === "subscribed") id = frame.value.id;
    if (frame.case === "subscribed" || frame.case === "unsubscribed") this.subsChanged = true;
    if (id !== 0 && this.requests.delete(id)) this.requestsChanged = true;
  }



  /**
   * After a restore from the store, once attached: requests the dead node never answered.
   * A subscribe is carried out here; a call or publish may have run there, so its client
   * hears UNAVAILABLE "node_lost" (idempotent ones are sent again by the client).
   */
  answerOrphans(): void {
    const orphans = Array.from(this.requests.values());
    this.requests.clear();
    this.requestsChanged = true;
    for (const r of orphans) {
      if (r.k === "sub") {
        const value = { id: r.id, method: r.method, channel: r.channel, recover: r.recover, epoch: r.epoch, offset: r.offset };
        this.requested(r);
        this.enqueueSync(r.channel, () => this.onSubscribe(value));
      } else {
        this.sendSequenced({
          case: "error",
          value: { id: r.id, code: Code.Unavailable, message: "the node running this request stopped", reason: "node_lost", retryAfterMs: 0 },
        });
      }
    }
  }

  private sendError(id: number, e: unknown, sequenced: boolean): void {
    const err = ProtocastError.from(e, Code.Internal);
    const value = { id, code: err.code, message: err.rawMessage, reason: err.reason, retryAfterMs: err.retryAfterMs };
    if (sequenced) this.sendSequenced({ case: "error", value });
    else this.sendUnsequenced({ case: "error", value });
  }

  // ---- receiving -----------------------------------------------------------------------

  /**
   * Takes a frame the rate limit refused: it keeps its seq (a retry would be a duplicate) and
   * a call or confirmed publish is answered RESOURCE_EXHAUSTED with the wait.
   */
  refuse(env: Envelope | NewerFrameEnvelope, retryAfterMs: number): void {
    if (env.seq !== 0) {
      if (env.seq <= this.seq.inSeq) return;
      if (env.seq !== this.seq.inSeq + 1) return; // a gap: receive() would close; let it
      this.seq.arrived(env.seq);
      this.core.scheduleAck(this);
    }
    const f = env.frame;
    const id = f?.case === "call" || f?.case === "publish" || f?.case === "subscribe" ? f.value.id : 0;
    if (id === 0) return;
    const err = new ProtocastError(Code.ResourceExhausted, `rate limit: retry in ${retryAfterMs} ms`, { reason: "rate_limited", retryAfterMs });
    this.sendError(id, err, true);
  }

  /** Handles one frame of the open session. Throws a ProtocastError for a violation. */
  receive(env: Envelope | NewerFrameEnvelope): void {
    const ackedBefore = this.seq.log.acked;
    this.seq.acknowledged(env.ackSeq);
    if (this.seq.log.acked !== ackedBefore) this.ackWaitSince = this.seq.log.size > 0 ? this.core.now() : 0;
    const arrival = this.seq.arrived(env.seq);
    if (arrival === "duplicate") return; // a retransmitted frame already processed
    if (arrival === "next") this.core.scheduleAck(this);
    const frame = env.frame;
    // A frame kind newer than this server: its seq and ack counted, the frame is ignored.
    if (frame === undefined) return;
    const tooLong = requestFieldProblem(frame);
    if (tooLong !== undefined) {
      // Answered before any other check (PROTOCOL.md 12); a fire-and-forget Publish is dropped.
      const id = (frame.value as { id?: number }).id ?? 0;
      if (id !== 0) this.sendError(id, tooLong, true);
      return;
    }
    switch (frame.case) {
      case "call":
        if (this.core.keeper !== undefined) this.requested({ k: "call", id: frame.value.id });
        this.onCall(frame.value);
        return;
      case "cancel":
        this.inflight.get(frame.value.id)?.abort(new ProtocastError(Code.Canceled, "canceled by the client"));
        return;
      case "subscribe": {
        const value = frame.value;
        if (this.core.keeper !== undefined) {
          const { id, method, channel, recover, epoch, offset } = value;
          this.requested({ k: "sub", id, method, channel, recover, epoch, offset });
        }
        this.enqueueSync(value.channel, () => this.onSubscribe(value));
        return;
      }
      case "unsubscribe":
        this.onUnsubscribe(frame.value);
        return;
      case "publish":
        if (frame.value.id !== 0 && this.core.keeper !== undefined) this.requested({ k: "pub", id: frame.value.id });
        void this.onPublish(frame.value);
        return;
      case "ack":
        // Stored with the next write, so that a node taking over replays from close by.
        if (frame.value.channels.length > 0) this.subsChanged = true;
        for (const p of frame.value.channels) {
          const sub = this.subs.get(p.channel);
          if (sub === undefined) continue;
          if (p.epoch !== sub.epoch) {
            sub.epoch = p.epoch;
            sub.ackedOffset = p.offset;
          } else if (p.offset > sub.ackedOffset) sub.ackedOffset = p.offset;
        }
        return;
      case "ping":
        this.sendUnsequenced({ case: "pong", value: { sentAtMs: frame.value.sentAtMs } });
        return;
      case "pong":
        return;
      case "authRefresh":
        void this.onAuthRefresh(frame.value.id, frame.value.token);
        return;
      default:
        throw new ProtocastError(Code.InvalidArgument, `unexpected ${frame.case} frame from a client`, {
          closeCode: CloseCode.ProtocolViolation,
        });
    }
  }

  // ---- calls ---------------------------------------------------------------------------

  private onCall(call: Call): void {
    const { id } = call;
    if (this.inflight.has(id)) throw new ProtocastError(Code.InvalidArgument, `call id ${id} is already in flight`, { closeCode: CloseCode.ProtocolViolation });
    const def = this.core.lookup(call.method);
    const handler = this.core.handlerFor(call.method);
    if (def === undefined || def.kind !== "call" || handler === undefined) {
      this.sendError(id, new ProtocastError(Code.Unimplemented, `method ${call.method} is not implemented`, { reason: "unknown_method" }), true);
      return;
    }
    if (!hasScope(this.principal, def.rules.scope)) {
      this.sendError(id, new ProtocastError(Code.PermissionDenied, `${call.method} needs scope "${def.rules.scope}"`, { reason: "missing_scope" }), true);
      return;
    }
    const limit = this.core.limits.maxInflightCalls;
    if (this.inflight.size >= limit) {
      bump(this.core.counters.limitHits, "max_inflight_calls");
      this.sendError(id, new ProtocastError(Code.ResourceExhausted, `more than ${limit} calls in flight`, { reason: "max_inflight_calls" }), true);
      return;
    }
    let request: unknown;
    try {
      request = def.inputCodec.decode(call.payload);
    } catch (e) {
      this.sendError(id, new ProtocastError(Code.InvalidArgument, `request of ${call.method} does not decode: ${String(e)}`, { reason: "bad_payload" }), true);
      return;
    }
    const dedupe = def.rules.delivery === "exactly-once";
    const keyProblem = checkKey(call.idempotencyKey, dedupe);
    if (keyProblem !== undefined) {
      this.sendError(id, keyProblem, true);
      return;
    }
    const timeoutMs = Math.min(call.timeoutMs > 0 ? call.timeoutMs : def.rules.timeoutMs, this.core.limits.maxCallTimeoutMs);
    const started = this.core.now();
    const running = new RunningCall(call.method, timeoutMs, dedupe, (o) => {
      if (this.inflight.get(id) === running) this.inflight.delete(id);
      this.core.observer?.callFinished?.(call.method, o.kind === "reply" ? "ok" : codeName(o.code as Code), this.core.now() - started);
      if (o.kind === "reply") this.sendSequenced({ case: "reply", value: { id, payload: o.payload } });
      else this.sendSequenced({ case: "error", value: { id, code: o.code, message: o.message, reason: o.reason, retryAfterMs: 0 } });
    });
    this.inflight.set(id, running);
    const ctx = this.callContext(running, call.method, call.idempotencyKey, started + timeoutMs);
    const encode = (result: unknown): Uint8Array => def.outputCodec.encode(result as never);
    if (!dedupe && this.core.authorize === undefined) {
      // The common case, without a promise of its own: a handler that answers synchronously
      // is replied to in the same turn.
      try {
        const result = handler(request, ctx);
        if (isThenable(result)) {
          result.then(
            (r) => running.settle(replyOutcome(encode, r)),
            (e: unknown) => running.settle(toErrorOutcome(e)),
          );
        } else running.settle(replyOutcome(encode, result));
      } catch (e) {
        running.settle(toErrorOutcome(e));
      }
      return;
    }
    const run = (): Promise<Uint8Array> => Promise.resolve().then(() => handler(request, ctx)).then(encode);
    void this.authorized({ principal: this.principal, action: "call", method: call.method, channel: "", params: undefined })
      .then((ok): Promise<Outcome> => {
        if (!ok) return Promise.resolve(toErrorOutcome(new ProtocastError(Code.PermissionDenied, `not allowed to call ${call.method}`)));
        // The handler's own outcome is what the idempotency record keeps, even if this request
        // gave up first (deadline): a retry then gets it instead of a second run.
        if (dedupe) return this.core.dedupe(this.idempotencyScope(), call.idempotencyKey, call.method, call.payload, run, running.signal, timeoutMs + LEASE_MARGIN_MS);
        return run().then(
          (payload): Outcome => ({ kind: "reply", payload }),
          (e: unknown): Outcome => toErrorOutcome(e),
        );
      })
      .then(
        (o) => running.settle(o),
        (e: unknown) => running.settle(toErrorOutcome(e)),
      );
  }

  /**
   * Whose idempotency records a request of this session may match (PROTOCOL.md 5.3, rule 1):
   * the principal's, or for an anonymous principal the session's, so that anonymous
   * connections sharing an id never see each other's outcomes. The NUL separator keeps such a
   * scope apart from ordinary principal ids; to collide, a named id would have to embed a NUL
   * and the session's random id.
   */
  private idempotencyScope(): string {
    return this.principal.anonymous === true ? `${this.principal.id}\u0000${this.id}` : this.principal.id;
  }

  private callContext(running: RunningCall, method: string, idempotencyKey: string, deadline: number): CallContext {
    return {
      principal: this.principal,
      sessionId: this.id,
      method,
      get signal() {
        return running.signal;
      },
      deadline,
      idempotencyKey,
      publish: this.publishFn,
      push: this.pushFn,
    };
  }

  private readonly publishFn: CallContext["publish"] = (ch, params, msg) => this.core.publish(ch, params, msg);
  private readonly pushFn: CallContext["push"] = (ev, principalId, msg) => this.core.push(ev, principalId, msg);

  /** Runs the server's authorize hook, if any; scopes are checked before it. */
  private authorized(request: AuthorizeRequest): Promise<boolean> {
    const hook = this.core.authorize;
    if (hook === undefined) return ALLOWED;
    return Promise.resolve().then(() => hook(request));
  }

  // ---- credentials ---------------------------------------------------------------------

  /** A fresh credential on the live connection: same principal, new expiry, scopes re-checked. */
  private async onAuthRefresh(id: number, token: string): Promise<void> {
    let next: Principal;
    try {
      next = await this.core.reauthenticate(token, this.principal);
      if (next.id !== this.principal.id) {
        throw new ProtocastError(Code.PermissionDenied, "a refreshed credential must name the same principal", { reason: "principal_changed" });
      }
    } catch (e) {
      const err = ProtocastError.from(e, Code.Unauthenticated);
      this.sendError(id, err, false);
      // A server that does not take refreshes says so and keeps the connection.
      if (err.code === Code.Unimplemented) return;
      this.core.log("auth_refresh_failed", this.conn, { reason: err.rawMessage });
      this.conn?.close(CloseCode.Unauthorized, "credential refresh refused");
      return;
    }
    this.principal = next;
    if (this.conn !== undefined) this.conn.refreshed(next);
    this.sendUnsequenced({ case: "authRefreshed", value: { id, expiresAtMs: next.expiresAtMs ?? 0 } });
    // What the old credential allowed, the new one may not: re-check every subscription.
    for (const [channel, sub] of Array.from(this.subs)) {
      const allowed =
        hasScope(next, sub.def.rules.readScope) &&
        (await this.authorized({ principal: next, action: "subscribe", method: sub.def.path, channel, params: sub.def.parse(channel) }));
      if (!allowed) this.kick(channel, "scope_revoked");
    }
  }

  /** Removes the session from a channel at once and tells the client why. */
  kick(channel: string, reason: string): boolean {
    if (!this.subs.has(channel)) return false;
    this.leave(channel);
    this.sendSequenced({ case: "unsubscribed", value: { id: 0, channel, code: Code.PermissionDenied, reason } });
    return true;
  }

  // ---- channels ------------------------------------------------------------------------

  private async onSubscribe(s: Subscribe): Promise<void> {
    const def = this.core.lookup(s.method);
    let sub = this.subs.get(s.channel);
    try {
      if (def === undefined || def.kind !== "channel") throw new ProtocastError(Code.NotFound, `no channel method ${s.method}`, { reason: "unknown_method" });
      if (def.parse(s.channel) === undefined) {
        throw new ProtocastError(Code.InvalidArgument, `channel "${s.channel}" does not match pattern "${def.rules.pattern}"`, { reason: "bad_channel" });
      }
      if (!hasScope(this.principal, def.rules.readScope)) {
        throw new ProtocastError(Code.PermissionDenied, `reading ${s.channel} needs scope "${def.rules.readScope}"`, { reason: "missing_scope" });
      }
      if (sub === undefined) {
        const l = this.core.limits;
        if (this.subs.size >= l.maxSubscriptionsPerConnection) {
          bump(this.core.counters.limitHits, "max_subscriptions");
          throw new ProtocastError(Code.ResourceExhausted, `a session may hold at most ${l.maxSubscriptionsPerConnection} subscriptions`, { reason: "max_subscriptions" });
        }
        const maxMembers = def.rules.maxMembers || l.maxMembers;
        if (this.core.hub.size(s.channel) >= maxMembers) {
          bump(this.core.counters.limitHits, "channel_full");
          throw new ProtocastError(Code.ResourceExhausted, `channel ${s.channel} is full (${maxMembers} members)`, { reason: "channel_full" });
        }
      }
      const params = def.parse(s.channel);
      if (!(await this.authorized({ principal: this.principal, action: "subscribe", method: s.method, channel: s.channel, params }))) {
        throw new ProtocastError(Code.PermissionDenied, `not allowed to read ${s.channel}`);
      }
      sub = this.subs.get(s.channel);
    } catch (e) {
      this.sendError(s.id, e, true);
      return;
    }
    if (sub === undefined) {
      sub = this.newSub(def);
      this.subs.set(s.channel, sub);
    }
    const current = sub;
    try {
      await this.core.hub.join(def, s.channel, current.member);
      await this.sync(current, s.channel, s.id, s.recover, s.epoch, s.offset);
    } catch (e) {
      this.leave(s.channel);
      this.sendError(s.id, e, true);
    }
  }

  private newSub(def: ChannelDef): Sub {
    const created: Sub = {
      def,
      holding: true,
      held: [],
      epoch: "",
      ackedOffset: 0,
      member: {
        member: this.member,
        deliver: (channel, frame, offset, key) => {
          // While detached, events are not buffered per session: history serves them.
          if (this.conn === undefined) return;
          if (!created.holding) this.conn.sendChannelFrame(frame, channel, key, def.rules.overflow);
          else if (created.held.length < MAX_HELD_FRAMES) created.held.push({ frame, offset });
          else this.conn.close(CloseCode.SlowConsumer, "channel re-sync fell too far behind");
        },
        gap: (gap) => {
          if (this.conn === undefined || created.def.rules.delivery === "at-most-once") return;
          const { fromOffset, toOffset, reason } = gap;
          this.sendSubscribed(created, gap.channel, 0, gap.epoch, toOffset, true, { fromOffset, toOffset, reason });
          const stored = this.whenStored();
          if (stored === undefined || created.holding) return;
          // Events after the gap wait for its notice to go out first.
          created.holding = true;
          void stored.then(() => {
            if (this.subs.get(gap.channel) !== created || !created.holding) return;
            for (const h of created.held) this.conn?.sendBytes(h.frame);
            created.held = [];
            created.holding = false;
          });
        },
      },
    };
    return created;
  }

  /**
   * Answers a subscribe (or re-syncs after a resume, with id 0): Subscribed with the channel's
   * position, then the missed events from history when `recover` is set, then the live events
   * held meanwhile that come after them. Live events never overtake replayed ones.
   */
  private async sync(sub: Sub, channel: string, id: number, recover: boolean, epoch: string, offset: number): Promise<void> {
    sub.holding = true;
    const broker = this.core.broker;
    let cut: number;
    // An empty epoch means the client has no position: nothing to recover (PROTOCOL.md 6.4).
    if (recover && epoch !== "") {
      const page = HISTORY_PAGE;
      let hist = await broker.history(channel, { epoch, offset }, page);
      if (hist.position.epoch === epoch && offset > hist.position.offset) {
        // A position past the channel's end: the history it came from is gone. Ask as if from
        // another epoch, which answers with an epoch_changed gap and what this epoch holds.
        hist = await broker.history(channel, { epoch: `${epoch}\u0000stale`, offset: 0 }, page);
      }
      if (this.subs.get(channel) !== sub) return;
      let answer = id;
      if (hist.gap !== undefined && hist.position.epoch !== epoch) {
        // A new epoch. When the broker knows the old one went past the client's position,
        // those offsets are reported first, in the old epoch; the new epoch's gap follows as
        // a re-sync (PROTOCOL.md 6.4).
        const gaps = epochChangeGaps({ epoch, offset }, hist.position.epoch, hist.gap.toOffset, hist.previous);
        if (gaps.length > 1) {
          const { fromOffset, toOffset, reason } = gaps[0]!;
          this.sendSubscribed(sub, channel, answer, epoch, toOffset, true, { fromOffset, toOffset, reason });
          answer = 0;
        }
        const { fromOffset, toOffset, reason } = gaps.at(-1)!;
        hist = { ...hist, gap: { fromOffset, toOffset, reason } };
      }
      // The next event after Subscribed has offset + 1: the client's own position when all
      // it missed follows, the end of the gap otherwise (PROTOCOL.md 6.4).
      const from = hist.gap !== undefined ? hist.gap.toOffset : Math.min(offset, hist.position.offset);
      this.sendSubscribed(sub, channel, answer, hist.position.epoch, from, true, hist.gap);
      // With a store, Subscribed waits for it; the replayed events must not overtake it.
      const stored = this.whenStored();
      if (stored !== undefined) await stored;
      sub.epoch = hist.position.epoch;
      sub.ackedOffset = hist.gap === undefined ? offset : (hist.events[0]?.offset ?? hist.position.offset + 1) - 1;
      cut = hist.position.offset;
      // Page through history until the position read first; live events after it are held.
      for (;;) {
        for (const ev of hist.events) {
          // Events carry no ack_seq: their bytes are the same for every subscriber.
          const value = { channel, epoch: ev.epoch, offset: ev.offset, payload: ev.payload };
          this.conn?.sendBytes(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "event", value } }));
        }
        const last = hist.events.at(-1);
        if (last === undefined || last.offset >= cut || hist.events.length < page) break;
        hist = await broker.history(channel, { epoch: last.epoch, offset: last.offset }, page);
        if (this.subs.get(channel) !== sub) return;
      }
      cut = Math.max(cut, hist.events.at(-1)?.offset ?? 0);
    } else {
      const pos = await broker.position(channel);
      if (this.subs.get(channel) !== sub) return;
      this.sendSubscribed(sub, channel, id, pos.epoch, pos.offset, false, undefined);
      sub.epoch = pos.epoch;
      sub.ackedOffset = pos.offset;
      cut = pos.offset;
      const stored = this.whenStored();
      if (stored !== undefined) await stored;
    }
    for (const h of sub.held) if (h.offset === 0 || h.offset > cut) this.conn?.sendBytes(h.frame);
    sub.held = [];
    sub.holding = false;
  }

  /** After a resume: re-syncs every subscription from the position the client acknowledged. */
  resyncAll(): void {
    for (const [channel, sub] of this.subs) {
      const reliable = sub.def.rules.delivery !== "at-most-once";
      this.enqueueSync(channel, () => this.sync(sub, channel, 0, reliable, sub.epoch, sub.ackedOffset));
    }
  }

  private enqueueSync(channel: string, task: () => Promise<void>): void {
    // Syncs of one channel run one after another: two replays must not interleave, or live
    // events could overtake replayed ones.
    const prev = this.syncing.get(channel) ?? Promise.resolve();
    const next = prev.then(task).catch(() => undefined);
    this.syncing.set(channel, next);
    void next.finally(() => {
      if (this.syncing.get(channel) === next) this.syncing.delete(channel);
    });
  }

  private sendSubscribed(
    sub: Sub,
    channel: string,
    id: number,
    epoch: string,
    offset: number,
    recover: boolean,
    gap: { fromOffset: number; toOffset: number; reason: string } | undefined,
  ): void {
    const all = sub.def.rules.presence ? this.core.hub.members(channel) : [];
    const value = { id, channel, epoch, offset, recovered: recover && gap === undefined, gap: recover ? gap : undefined, members: all };
    // A member list that does not fit one envelope continues in Presence frames (joined only)
    // right behind the Subscribed, before any Event (PROTOCOL.md 6.9).
    const { members, rest } = splitMembers(value, this.core.limits.maxEnvelopeBytes);
    this.sendSequenced({ case: "subscribed", value: { ...value, members } });
    if (rest.length === 0) return;
    const send = (): void => {
      for (const joined of rest) this.conn?.sendBytes(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "presence", value: { channel, joined, left: [] } } }));
    };
    const stored = this.whenStored();
    if (stored === undefined) send();
    else void stored.then(send);
  }

  private onUnsubscribe(u: Unsubscribe): void {
    this.leave(u.channel);
    this.sendSequenced({ case: "unsubscribed", value: { id: u.id, channel: u.channel, code: 0, reason: "" } });
  }

  private leave(channel: string): void {
    const sub = this.subs.get(channel);
    if (sub === undefined) return;
    this.subs.delete(channel);
    this.core.hub.leave(channel, sub.member);
  }

  private async onPublish(p: Publish): Promise<void> {
    try {
      const def = this.core.lookup(p.method);
      if (def === undefined || def.kind !== "channel") throw new ProtocastError(Code.NotFound, `no channel method ${p.method}`, { reason: "unknown_method" });
      if (!def.rules.clientPublish) throw new ProtocastError(Code.PermissionDenied, `clients may not publish to ${def.rules.pattern}`, { reason: "client_publish_disabled" });
      const params = def.parse(p.channel);
      if (params === undefined) throw new ProtocastError(Code.InvalidArgument, `channel "${p.channel}" does not match pattern "${def.rules.pattern}"`, { reason: "bad_channel" });
      if (!hasScope(this.principal, def.rules.publishScope)) {
        throw new ProtocastError(Code.PermissionDenied, `publishing to ${p.channel} needs scope "${def.rules.publishScope}"`, { reason: "missing_scope" });
      }
      if (!(await this.authorized({ principal: this.principal, action: "publish", method: p.method, channel: p.channel, params }))) {
        throw new ProtocastError(Code.PermissionDenied, `not allowed to publish to ${p.channel}`);
      }
      const dedupe = def.rules.delivery === "exactly-once";
      const keyProblem = checkKey(p.idempotencyKey, dedupe);
      if (keyProblem !== undefined) throw keyProblem;
      let message: unknown;
      try {
        message = def.messageCodec.decode(p.payload);
      } catch (e) {
        throw new ProtocastError(Code.InvalidArgument, `message for ${p.channel} does not decode: ${String(e)}`, { reason: "bad_payload" });
      }
      const run = async (): Promise<Uint8Array> => {
        let payload = p.payload;
        const hook = this.core.publishHookFor(p.method);
        if (hook !== undefined) {
          const replaced = await hook(params, message, { principal: this.principal, sessionId: this.id, channel: p.channel });
          if (replaced !== undefined) payload = def.messageCodec.encode(replaced as never);
        }
        // The Reply names where the event landed (PROTOCOL.md 3.4, Reply).
        return encodeChannelPosition(await this.core.publishBytes(def, p.channel, payload));
      };
      const target = `${p.method} ${p.channel}`;
      const outcome = dedupe
        ? await this.core.dedupe(this.idempotencyScope(), p.idempotencyKey, target, p.payload, run, undefined, this.core.limits.maxCallTimeoutMs + LEASE_MARGIN_MS)
        : await run().then(
            (payload): Outcome => ({ kind: "reply", payload }),
            (e: unknown): Outcome => toErrorOutcome(e),
          );
      if (p.id === 0) return;
      if (outcome.kind === "reply") this.sendSequenced({ case: "reply", value: { id: p.id, payload: outcome.payload } });
      else this.sendSequenced({ case: "error", value: { id: p.id, code: outcome.code, message: outcome.message, reason: outcome.reason, retryAfterMs: 0 } });
    } catch (e) {
      if (p.id !== 0) this.sendError(p.id, e, true);
    }
  }
}

const ALLOWED = Promise.resolve(true);

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

function replyOutcome(encode: (r: unknown) => Uint8Array, result: unknown): Outcome {
  try {
    return { kind: "reply", payload: encode(result) };
  } catch (e) {
    return toErrorOutcome(e);
  }
}

function checkKey(key: string, required: boolean): ProtocastError | undefined {
  if (key === "" && !required) return undefined;
  if (required && key === "") {
    return new ProtocastError(Code.InvalidArgument, "this method is exactly-once and needs an idempotency key", { reason: "idempotency_key_required" });
  }
  if (key.length > MAX_IDEMPOTENCY_KEY_BYTES || new TextEncoder().encode(key).length > MAX_IDEMPOTENCY_KEY_BYTES) {
    return new ProtocastError(Code.InvalidArgument, `idempotency key longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes`, { reason: "idempotency_key_too_long" });
  }
  return undefined;
}

/**
 * What a client is told about a failure. A ProtocastError goes as it is; anything else is a
 * bug whose text may hold internal data, so the client hears only UNKNOWN.
 */
export function toErrorOutcome(e: unknown): Outcome {
  if (!(e instanceof ProtocastError) && !(e instanceof Error && e.name === "AbortError")) {
    return { kind: "error", code: Code.Unknown, message: "the handler failed", reason: "" };
  }
  const err = ProtocastError.from(e, Code.Unknown);
  return { kind: "error", code: err.code, message: err.rawMessage, reason: err.reason };
}

export function isTransient(o: Outcome): boolean {
  return o.kind === "error" && TRANSIENT.has(o.code);
}

export { hashBytes };
