import { Code } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { Sequencer } from "../session/sequencer.js";
import { SESSION_TRANSITIONS, allows, type SessionPhase } from "../session/states.js";
import type { SessionSnapshot } from "../session/snapshot.js";
import type { ResumeCandidate } from "../session/resume.js";
import type { SessionWrite } from "../broker/session-store.js";
import type { NewerFrameEnvelope } from "../wire/decode.js";
import { encodeEnvelope } from "../wire/encode.js";
import type { Envelope, Frame, Member } from "../wire/envelope.js";
import type { Principal } from "./context.js";
import { bump } from "./counters.js";
import { randomId } from "./ids.js";
import { requestFieldProblem } from "./field-limits.js";
import type { SessionHost, SessionLink } from "./session-host.js";
import { SessionCalls } from "./session-calls.js";
import { SessionChannels, type SubRecord } from "./session-channels.js";
import { SessionStorage, type PendingRequest } from "./session-storage.js";

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

/**
 * Server side of one session. It outlives its connection for a grace period: running calls
 * go on, their answers wait in the retransmission buffer, and the session stays in its
 * channels. A Resume on a new connection picks it up where it was.
 *
 * This class holds the session's identity, phase, numbering and attachment, and routes what
 * arrives; calls (session-calls.ts), channels (session-channels.ts) and the session-store
 * bookkeeping (session-storage.ts) live in parts of their own, made when first needed, so
 * that an idle session carries none of them.
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
  /** Made by the first numbered frame either way: an idle session never numbers anything. */
  private seqPart: Sequencer<Uint8Array> | undefined;
  /** Set when another node took the session over in the store. */
  disownedByStore = false;
  /** Set when the session was continued from the store after its node died. */
  fromStore = false;
  private callsPart: SessionCalls | undefined;
  private channelsPart: SessionChannels | undefined;
  /** Session-store bookkeeping: made with a store, or when a snapshot carried unanswered requests. */
  private storage: SessionStorage | undefined;

  constructor(
    private readonly core: SessionHost<ServerSession>,
    public principal: Principal,
    restored?: { readonly id: string; readonly token: string },
  ) {
    this.id = restored?.id ?? `${core.nodeId}.${randomId()}`;
    this.resumeToken = restored?.token ?? randomId(24);
    if (core.keeper !== undefined) this.storage = this.newStorage();
  }

  /** Both directions' numbering, acknowledgements and the retransmission buffer (session/sequencer.ts). */
  get seq(): Sequencer<Uint8Array> {
    return (this.seqPart ??= new Sequencer(this.core.retransmitLimits));
  }

  /** Frames sent and not acknowledged yet. */
  get unacknowledged(): number {
    return this.seqPart?.log.size ?? 0;
  }

  private get calls(): SessionCalls {
    return (this.callsPart ??= new SessionCalls(this.core, this));
  }

  private get channels(): SessionChannels {
    return (this.channelsPart ??= new SessionChannels(this.core, this));
  }

  private newStorage(): SessionStorage {
    const keeper = this.core.keeper;
    return new SessionStorage({
      seq: this.seq,
      sendBytes: (bytes) => this.conn?.sendBytes(bytes),
      markDirty: () => keeper?.mark(this),
      ackReady: () => {
        if (this.conn !== undefined) this.core.scheduleAck(this);
      },
    });
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
      subs: JSON.stringify(this.channelsPart?.records() ?? []),
      calls: JSON.stringify(this.storage?.pending() ?? []),
    };
  }

  /**
   * Hands the session to another node: it leaves this node's channels without a leave event
   * (the new node speaks for it), and answers of calls still running here are forwarded.
   */
  moveTo(node: string): void {
    this.enter("moved");
    this.movedTo = node;
    this.channelsPart?.movedTo(node);
    this.seqPart?.log.clear();
    this.conn = undefined;
  }

  /**
   * Continues a session from a snapshot, call before attach(): one another node handed over,
   * or one claimed from the session store after its node died. Frames, counters, channels and
   * the requests still unanswered come back; from the store, the store already has all of it.
   */
  restore(snapshot: SessionSnapshot, from: "node" | "store"): void {
    this.seq.restore(snapshot.outSeq, snapshot.inSeq, snapshot.frames.map(([seq, bytes]) => [seq, bytes, bytes.byteLength] as const));
    const subs = parseList<SubRecord>(snapshot.subs);
    if (subs.length > 0) this.channels.restore(subs);
    const requests = parseList<PendingRequest>(snapshot.calls);
    if (requests.length > 0) (this.storage ??= this.newStorage()).restoreRequests(requests);
    for (const r of requests) if (r.k === "sub" && r.recover && r.epoch !== "") this.channels.startAt(r.channel, r.epoch, r.offset);
    if (from === "store") {
      this.fromStore = true;
      this.storage?.fromStore(snapshot.outSeq, snapshot.inSeq);
    }
  }

  /**
   * After a resume, a handover or a restore, once attached: re-syncs every subscription from the
   * position the client acknowledged, joining this node's hub first where it has not yet.
   */
  resyncAll(): void {
    this.channelsPart?.resyncAll();
  }

  /**
   * After a handover with a session store: the store has frames up to `storedOutSeq`; the
   * rest of the log is written from here before it goes out.
   */
  reconcile(storedOutSeq: number, storedInSeq: number, missing: boolean): void {
    this.storage?.reconcile(storedOutSeq, storedInSeq, missing);
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
    return this.callsPart?.running ?? 0;
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
    this.ackWaitSince = this.unacknowledged > 0 ? this.core.now() : 0;
  }

  detach(now: number): void {
    this.enter("detached");
    this.conn = undefined;
    this.detachedAt = now;
    this.channelsPart?.detached();
  }

  /** Sends, in order, every buffered frame after `lastSeq`; false when some are gone. */
  replayAfter(lastSeq: number): boolean {
    // With a store, frames not stored yet go out when they are, in order, after these.
    const upTo = this.core.keeper === undefined ? this.seq.outSeq : (this.storage?.storedSeq ?? 0);
    if (this.lost) return false;
    const frames = lastSeq >= upTo ? [] : this.seq.resumeFrom(lastSeq, upTo);
    if (frames === undefined) return false;
    // Resume.last_seq acknowledges what the client has, whether or not anything follows it: a
    // client with nothing new to acknowledge sends no Ack, and the frames would stay buffered
    // (and the ack timeout running) until its next Pong.
    if (lastSeq <= this.seq.outSeq) this.applyAck(lastSeq);
    this.core.counters.retransmits += frames.length;
    for (const f of frames) this.conn?.sendBytes(f.item);
    return true;
  }

  /** A cumulative acknowledgement (an envelope's ack_seq, or a Resume's last_seq): frames up to it are released. */
  private applyAck(ackSeq: number): void {
    const seq = this.seq;
    const before = seq.log.acked;
    seq.acknowledged(ackSeq);
    if (seq.log.acked !== before) this.ackWaitSince = seq.log.size > 0 ? this.core.now() : 0;
  }

  /** Ends the session: leaves channels (leave events go out), aborts calls, frees buffers. */
  end(): void {
    if (this.ended) return;
    this.enter("ended");
    this.ended = true;
    this.callsPart?.end();
    this.channelsPart?.end();
    this.seqPart?.log.clear();
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
    const storage = this.core.keeper !== undefined ? this.storage : undefined;
    if (storage !== undefined) storage.answered(frame);
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
    if (storage !== undefined) {
      // Out only once the store has it: a node that takes over must know every frame sent.
      storage.hold(seq, bytes);
      return;
    }
    this.conn?.sendBytes(bytes);
  }

  sendUnsequenced(frame: Frame): void {
    const conn = this.conn;
    if (this.movedTo !== undefined) return;
    if (conn === undefined) return;
    const ackSeq = this.seqPart === undefined ? 0 : this.seqPart.ackSent(this.ackable);
    conn.sendBytes(encodeEnvelope({ seq: 0, ackSeq, frame }));
  }

  /** The highest client seq the client may be told was received. */
  get ackable(): number {
    if (this.core.keeper === undefined || this.storage === undefined) return this.seq.inSeq;
    return this.storage.ackable();
  }

  /** Answers request `id` with the error `e` stands for. */
  sendError(id: number, e: unknown, sequenced: boolean): void {
    const err = ProtocastError.from(e, Code.Internal);
    const value = { id, code: err.code, message: err.rawMessage, reason: err.reason, retryAfterMs: err.retryAfterMs };
    if (sequenced) this.sendSequenced({ case: "error", value });
    else this.sendUnsequenced({ case: "error", value });
  }

  // ---- the session store (the keeper's side, session/keeper.ts) -------------------------

  /** Whether the keeper may write it (not moved, not ended). */
  get storable(): boolean {
    return this.movedTo === undefined && !this.ended && !this.disownedByStore;
  }

  /** What the store lacks, for the keeper's next batch. */
  takeWrite(): SessionWrite {
    this.storage ??= this.newStorage();
    return this.storage.takeWrite(
      this.id,
      () => ({ token: this.resumeToken, principal: JSON.stringify(principalRecord(this.principal)) }),
      () => JSON.stringify(this.channelsPart?.records() ?? []),
    );
  }

  /** The store has a write: its frames go out, and acknowledgements may claim its inSeq. */
  stored(w: SessionWrite): void {
    this.storage?.stored(w);
  }

  /** A write did not reach the store: the keeper writes it again. */
  unwritten(w: SessionWrite): void {
    this.storage?.unwritten(w);
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
    if (this.core.keeper === undefined) return undefined;
    return this.storage?.whenStored();
  }

  /**
   * After a restore from the store, once attached: requests the dead node never answered.
   * A subscribe is carried out here; a call or publish may have run there, so its client
   * hears UNAVAILABLE "node_lost" (idempotent ones are sent again by the client).
   */
  answerOrphans(): void {
    const storage = this.storage;
    if (storage === undefined) return;
    for (const r of storage.takePending()) {
      if (r.k === "sub") {
        const value = { id: r.id, method: r.method, channel: r.channel, recover: r.recover, epoch: r.epoch, offset: r.offset };
        storage.requested(r);
        this.channels.subscribe(value);
      } else {
        this.sendSequenced({
          case: "error",
          value: { id: r.id, code: Code.Unavailable, message: "the node running this request stopped", reason: "node_lost", retryAfterMs: 0 },
        });
      }
    }
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
    // A Pong or Ping of a session that never numbered a frame either way leaves it so.
    if (this.seqPart !== undefined || env.seq !== 0 || env.ackSeq !== 0) {
      const seq = this.seq;
      this.applyAck(env.ackSeq);
      const arrival = seq.arrived(env.seq);
      if (arrival === "duplicate") return; // a retransmitted frame already processed
      if (arrival === "next") this.core.scheduleAck(this);
    }
    const frame = env.frame;
    // A frame kind newer than this server: its seq and ack counted, the frame is ignored.
    if (frame === undefined) return;
    const tooLong = requestFieldProblem(frame, this.core.limits);
    if (tooLong !== undefined) {
      // Answered before any other check (PROTOCOL.md 12); a fire-and-forget Publish is dropped.
      const id = (frame.value as { id?: number }).id ?? 0;
      if (id !== 0) this.sendError(id, tooLong, true);
      return;
    }
    const storage = this.core.keeper !== undefined ? this.storage : undefined;
    switch (frame.case) {
      case "call":
        storage?.requested({ k: "call", id: frame.value.id });
        this.calls.onCall(frame.value);
        return;
      case "cancel":
        this.callsPart?.cancel(frame.value.id);
        return;
      case "subscribe": {
        const value = frame.value;
        if (storage !== undefined) {
          const { id, method, channel, recover, epoch, offset } = value;
          storage.requested({ k: "sub", id, method, channel, recover, epoch, offset });
        }
        this.channels.subscribe(value);
        return;
      }
      case "unsubscribe":
        this.channels.unsubscribe(frame.value);
        return;
      case "publish":
        if (frame.value.id !== 0) storage?.requested({ k: "pub", id: frame.value.id });
        void this.channels.publish(frame.value);
        return;
      case "ack":
        // Stored with the next write, so that a node taking over replays from close by.
        if (frame.value.channels.length > 0) {
          this.storage?.subsTouched();
          this.channelsPart?.acked(frame.value.channels);
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
    await this.channelsPart?.recheck(next);
  }

  /** Removes the session from a channel at once and tells the client why. */
  kick(channel: string, reason: string): boolean {
    return this.channelsPart?.kick(channel, reason) ?? false;
  }
}
