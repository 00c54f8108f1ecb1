import { Code } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Overflow } from "../service/rules.js";
import type { Transport, TransportHandler } from "../transport/transport.js";
import { decodeIncoming, type NewerFrameEnvelope } from "../wire/decode.js";
import { encodeEnvelope } from "../wire/encode.js";
import type { Envelope, Frame, Hello, Resume, SessionLost } from "../wire/envelope.js";
import type { Principal } from "./context.js";
import { TokenBucket } from "../session/token-bucket.js";
import { bump } from "./counters.js";
import { randomId } from "./ids.js";
import { Heartbeat, type HeartbeatTimes } from "../session/heartbeat.js";
import { judgeResume, type ResumeAsk } from "../session/resume.js";
import { checkSequencing } from "../session/sequencing.js";
import { checkOpeningFields } from "./field-limits.js";
import { Cluster, type TakeRequest } from "./cluster.js";
import type { DecodeLimits } from "../wire/limits.js";
import type { SessionHost } from "./session-host.js";
import type { ServerLimits } from "./options.js";

/** Frames a connection holds while its session comes over from another node. */
const MAX_WAITING_FRAMES = 1_000;
import { ServerSession } from "./session.js";

interface HeldFrame {
  readonly frame: Uint8Array;
  readonly channel: string;
  readonly key: string;
}

/**
 * What a connection needs of the server it belongs to. The server core implements it; the
 * connection does not import the core, so the two do not import each other.
 */
export interface ConnectionHost extends SessionHost<ServerSession> {
  readonly decodeLimits: DecodeLimits;
  readonly sessions: ReadonlyMap<string, ServerSession>;
  addSession(session: ServerSession): void;
  endSession(session: ServerSession, keepStored?: boolean): void;
  wasExpired(sessionId: string): boolean;
  /** The connection closed: the server forgets it. */
  forget(conn: ServerConnection, code: number, reason: string): void;
  /** Takes a session over from another node or the store; the reason when it cannot. */
  adopt(request: TakeRequest, wanted?: () => boolean): Promise<ServerSession | string>;
  /** The adoption of this session under way on this node, if one is. */
  adoptionOf(sessionId: string): Promise<unknown> | undefined;
}

/** handshake: waiting for Hello/Resume; open: serving a session; closed: gone. */
export type ConnectionState = "handshake" | "open" | "closed";

/**
 * Close codes after which the session ends at once; after any other close (a dropped link,
 * 1001, 1011, 4000-4499) it waits for a Resume during the grace period.
 */
function endsSession(code: number): boolean {
  return code === CloseCode.Normal || code === 1002 || code === 1003 || code === 1007 || code === 1009 || (code >= 4500 && code <= 4999);
}

/**
 * One transport connection on the server: decodes frames, runs the handshake and hands the
 * rest to its session. It has no timers: the server's shared tick watches heartbeats.
 */
export class ServerConnection implements TransportHandler {
  state: ConnectionState = "handshake";
  private idPart: string | undefined;
  /** The connection's id in logs; made when first asked for. */
  get id(): string {
    return (this.idPart ??= randomId(9));
  }
  session: ServerSession | undefined;
  /** Id of the session this connection served, kept for logs after it closes. */
  sessionId = "";
  readonly acceptedAt: number;
  /** Pings every interval; the server's shared tick asks it what is due (session/heartbeat.ts). */
  readonly heartbeat: Heartbeat;
  /** When this connection is told to go (max lifetime); then when it gets closed if still here. */
  rotateAt: number;
  goawaySentAt = 0;
  /** How long after its Goaway the connection is closed if the client is still here. */
  goawayCloseMs: number;
  /** Frames held while the session is fetched from another node; undefined otherwise. */
  private waiting: Uint8Array[] | undefined;
  /** Set when the server itself closed the connection with this code. */
  private closedWith: number | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** Rate limits, made at the first frame they charge: an idle connection never needs them. */
  private messageBucket: TokenBucket | undefined;
  private byteBucket: TokenBucket | undefined;
  /** Frames refused in a row by the rate limit. */
  private violations = 0;
  /** Channel frames held back while the transport is past its high-water mark; made when first needed. */
  private held: HeldFrame[] | undefined;
  private heldBytes = 0;
  /** Held frames per channel: a channel with frames held sends nothing directly (order). */
  private heldPerChannel: Map<string, number> | undefined;

  constructor(
    private readonly core: ConnectionHost,
    private readonly transport: Transport,
    public principal: Principal,
    readonly remoteAddress: string,
  ) {
    this.acceptedAt = core.now();
    this.heartbeat = new Heartbeat("pinger", heartbeatTimes(core.limits), this.acceptedAt);
    this.goawayCloseMs = core.limits.goawayCloseMs;
    const life = core.limits.maxConnectionLifetimeMs;
    this.rotateAt = this.acceptedAt + life - Math.floor(Math.random() * life * 0.1);
  }

  /** Goaway for a shutdown: sent whatever was sent before, with its own delays. */
  goawayNow(reason: string, reconnectAfterMs: number, closeInMs: number): void {
    if (this.state !== "open") return;
    this.goawaySentAt = this.core.now();
    this.goawayCloseMs = closeInMs;
    this.sendFrame({ case: "goaway", value: { reason, reconnectAfterMs, closeInMs } });
  }

  /** Asks the client to reconnect (and resume) elsewhere; the tick closes it if it lingers. */
  goaway(reason: string, now: number): void {
    if (this.goawaySentAt !== 0 || this.state !== "open") return;
    this.goawaySentAt = now;
    this.sendFrame({ case: "goaway", value: { reason, reconnectAfterMs: 0, closeInMs: this.core.limits.goawayCloseMs } });
  }

  /** Bytes queued on the transport and not yet written to the network. */
  get bufferedAmount(): number {
    return this.transport.bufferedAmount;
  }

  sendBytes(bytes: Uint8Array): void {
    if (this.mayWrite(bytes)) this.transport.send(bytes);
  }

  /** Bytes shared with other connections (channel events): the transport may frame them once. */
  private sendSharedBytes(bytes: Uint8Array): void {
    if (!this.mayWrite(bytes)) return;
    if (this.transport.sendShared !== undefined) this.transport.sendShared(bytes);
    else this.transport.send(bytes);
  }

  /** The checks before any write, and its accounting. */
  private mayWrite(bytes: Uint8Array): boolean {
    // Nothing more goes out once the server decided to close: a slow consumer's close frame
    // must not wait behind frames it will never read.
    if (this.state === "closed" || this.closedWith !== undefined) return false;
    const expiresAt = this.principal.expiresAtMs;
    if (expiresAt !== undefined && expiresAt !== 0 && Date.now() >= expiresAt) {
      // Not one frame after the credential expired.
      this.close(CloseCode.TokenExpired, "credential expired");
      return false;
    }
    this.bytesOut += bytes.byteLength;
    const c = this.core.counters;
    c.messagesOut++;
    c.bytesOut += bytes.byteLength;
    return true;
  }

  /**
   * Sends a channel frame (shared bytes) under back-pressure rules: while the transport has
   * less than the high-water mark queued, it goes out at once; past it, the channel's overflow
   * policy decides. Memory per connection stays within the transport's buffer plus the mark.
   */
  sendChannelFrame(frame: Uint8Array, channel: string, key: string, overflow: Overflow): void {
    if (this.state === "closed" || this.closedWith !== undefined) return;
    const hwm = this.core.limits.sendHighWaterMark;
    if ((this.held === undefined || this.held.length === 0 || this.heldPerChannel?.has(channel) !== true) && this.transport.bufferedAmount < hwm) {
      this.sendSharedBytes(frame);
      return;
    }
    const drops = this.core.counters.drops;
    switch (overflow) {
      case "disconnect":
        bump(drops, overflow);
        this.core.log("slow_consumer", this, { channel, buffered: this.transport.bufferedAmount, highWaterMark: hwm });
        this.close(CloseCode.SlowConsumer, "send buffer full");
        return;
      case "drop-newest":
        bump(drops, overflow);
        return;
      case "conflate":
        if (key !== "" && this.held !== undefined) {
          const i = this.held.findIndex((h) => h.channel === channel && h.key === key);
          if (i >= 0) {
            // Keep the newest value for the key, in the place of the one it replaces.
            this.heldBytes += frame.byteLength - this.held[i]!.frame.byteLength;
            this.held[i] = { frame, channel, key };
            bump(drops, overflow);
            return;
          }
        }
        break;
      case "drop-oldest":
        break;
    }
    const held = (this.held ??= []);
    const perChannel = (this.heldPerChannel ??= new Map());
    held.push({ frame, channel, key });
    this.heldBytes += frame.byteLength;
    perChannel.set(channel, (perChannel.get(channel) ?? 0) + 1);
    while (this.heldBytes > hwm && held.length > 0) {
      const oldest = held.shift()!;
      this.unhold(oldest);
      bump(drops, overflow);
    }
  }

  private unhold(h: HeldFrame): void {
    this.heldBytes -= h.frame.byteLength;
    const perChannel = this.heldPerChannel;
    if (perChannel === undefined) return;
    const n = (perChannel.get(h.channel) ?? 1) - 1;
    if (n <= 0) perChannel.delete(h.channel);
    else perChannel.set(h.channel, n);
  }

  /** The transport caught up: send held frames while it stays under the mark. */
  onDrain(): void {
    const hwm = this.core.limits.sendHighWaterMark;
    const held = this.held;
    if (held === undefined) return;
    while (held.length > 0 && this.transport.bufferedAmount < hwm && this.state !== "closed") {
      const h = held.shift()!;
      this.unhold(h);
      this.sendSharedBytes(h.frame);
    }
  }

  private sendFrame(frame: Frame): void {
    this.sendBytes(encodeEnvelope({ seq: 0, ackSeq: 0, frame }));
  }

  /** The expiry the client was last warned about; AuthExpiring goes out once per expiry. */
  private warnedExpiry = 0;

  warnExpiry(expiresAt: number): void {
    if (this.warnedExpiry === expiresAt || this.state !== "open") return;
    this.warnedExpiry = expiresAt;
    this.sendFrame({ case: "authExpiring", value: { expiresAtMs: expiresAt } });
  }

  /** The session accepted a refreshed credential. */
  refreshed(principal: Principal): void {
    this.principal = principal;
  }

  ping(now: number): void {
    this.sendFrame({ case: "ping", value: { sentAtMs: now } });
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    if (this.closedWith === undefined) {
      this.closedWith = code;
      this.closingSince = this.core.now();
    }
    this.transport.close(code, reason);
  }

  /** When the server started closing; the tick aborts a connection whose peer never answers. */
  closingSince = 0;

  abort(): void {
    if (this.state !== "closed") this.transport.abort();
  }

  private fail(err: ProtocastError): void {
    this.core.log("protocol_violation", this, { error: err.message });
    this.close(err.closeCode ?? CloseCode.ProtocolViolation, err.rawMessage.slice(0, 120));
  }

  onMessage(data: Uint8Array): void {
    if (this.state === "closed") return;
    // Any frame answers an outstanding Ping: the peer is alive.
    this.heartbeat.ponged(this.core.now());
    this.bytesIn += data.byteLength;
    const c = this.core.counters;
    c.messagesIn++;
    c.bytesIn += data.byteLength;
    if (this.waiting !== undefined) {
      // The session is on its way from another node: its frames wait for it, in order.
      if (this.waiting.length >= MAX_WAITING_FRAMES) this.close(CloseCode.RateLimited, "too many frames before the session arrived");
      else this.waiting.push(data);
      return;
    }
    this.process(data);
  }

  private process(data: Uint8Array): void {
    let env: Envelope | NewerFrameEnvelope;
    try {
      env = decodeIncoming(data, this.core.decodeLimits);
    } catch (e) {
      this.fail(ProtocastError.from(e, Code.InvalidArgument));
      return;
    }
    try {
      // seq 0 on a request, or a seq on a connection-level frame, is a broken client (3.7).
      if (env.frame !== undefined) checkSequencing(env.frame.case, env.seq);
      if (this.state === "handshake") this.handshake(env);
      else if (this.withinRate(env, data.byteLength)) this.session?.receive(env);
    } catch (e) {
      this.fail(ProtocastError.from(e, Code.Internal));
    }
  }

  /**
   * Charges a frame to the connection's rate limits. Heartbeats, acks and cancels are free: refusing
   * them would only make a busy client look dead. A refused call or publish is answered with
   * RESOURCE_EXHAUSTED "rate_limited" and its retry delay; a client that keeps going is closed
   * with 4004.
   */
  private withinRate(env: Envelope | NewerFrameEnvelope, bytes: number): boolean {
    const kind = env.frame?.case;
    if (kind === "ping" || kind === "pong" || kind === "ack" || kind === "cancel") return true;
    const now = this.core.now();
    const l = this.core.limits;
    this.messageBucket ??= new TokenBucket(l.rateMessagesPerSecond, l.rateMessagesBurst, now);
    this.byteBucket ??= new TokenBucket(l.rateBytesPerSecond, l.rateBytesBurst, now);
    const wait = Math.max(this.messageBucket.take(1, now), this.byteBucket.take(bytes, now));
    if (wait === 0) {
      this.violations = 0;
      return true;
    }
    bump(this.core.counters.limitHits, "rate");
    if (++this.violations >= this.core.limits.rateViolationsBeforeClose) {
      this.core.log("limit", this, { limit: "rate", action: "close" });
      this.close(CloseCode.RateLimited, "rate limit exceeded");
      return false;
    }
    // The frame is refused, but its place in the sequence is kept so that later frames do not
    // look like a gap: the session counts it and answers it.
    this.session?.refuse(env, wait);
    return false;
  }

  private handshake(env: Envelope | NewerFrameEnvelope): void {
    const frame = env.frame;
    if (frame === undefined || (frame.case !== "hello" && frame.case !== "resume")) {
      throw new ProtocastError(Code.InvalidArgument, `expected hello or resume, got ${frame?.case ?? "an unknown frame kind"}`, {
        closeCode: CloseCode.ProtocolViolation,
      });
    }
    if (frame.value.version !== 1) {
      throw new ProtocastError(Code.FailedPrecondition, `protocol version ${frame.value.version} is not supported; this server speaks 1`, {
        closeCode: CloseCode.UnsupportedVersion,
      });
    }
    checkOpeningFields(frame);
    this.state = "open";
    if (frame.case === "resume") this.resume(frame.value);
    else this.welcome(frame.value, undefined);
  }

  private welcome(_hello: Hello | Resume, lost: SessionLost | undefined): void {
    const session = new ServerSession(this.core, this.principal);
    this.core.addSession(session);
    this.session = session;
    this.sessionId = session.id;
    session.attach(this);
    const l = this.core.limits;
    this.sendFrame({
      case: "welcome",
      value: {
        version: 1,
        sessionId: session.id,
        resumeToken: session.resumeToken,
        pingIntervalMs: l.pingIntervalMs,
        pingTimeoutMs: l.pingTimeoutMs,
        maxEnvelopeBytes: l.maxEnvelopeBytes,
        expiresAtMs: this.principal.expiresAtMs ?? 0,
        sessionLost: lost,
        principal: this.principal.id,
      },
    });
    this.core.log("connect", this, { resumed: false, lost: lost?.reason ?? "" });
  }

  private resume(r: Resume): void {
    const adopting = this.core.adoptionOf(r.sessionId);
    if (adopting !== undefined) {
      // An earlier connection of this client is bringing the session to this node: wait for
      // it, then resume as from a session held here (a second adoption would restore an older
      // copy beside the one the first brings).
      this.holdFramesUntil(adopting, () => this.resume(r));
      return;
    }
    const s = this.core.sessions.get(r.sessionId);
    const lost = (reason: string, session?: ServerSession): void => {
      const from = session === undefined ? 0 : r.lastSeq + 1;
      const to = session === undefined ? 0 : session.lastAssignedSeq;
      this.welcome(r, { previousSessionId: r.sessionId, reason, lostFromSeq: from <= to ? from : 0, lostToSeq: from <= to ? to : 0 });
    };
    const failures = this.core.counters.resumeFailures;
    const owner = Cluster.ownerOf(r.sessionId);
    const shared = this.core.cluster !== undefined || this.core.keeper !== undefined;
    if (s === undefined && shared && owner !== undefined && owner !== this.core.nodeId) {
      // The session lives on another node: ask for it, and hold this connection's frames
      // until it arrives (the handshake deadline still runs).
      const request = { sessionId: r.sessionId, ...this.resumeAsk(r) };
      this.holdFramesUntil(this.core.adopt(request, () => this.state !== "closed"), (got) => {
        if (got === "beyond_sent") throw resumeViolation(r.lastSeq, undefined);
        if (typeof got === "string") {
          bump(failures, got);
          lost(got);
        } else this.continueSession(got, r, true);
      }, (got) => {
        // The client left meanwhile: the session waits for it here, as any detached one.
        if (typeof got !== "string") got.detach(this.core.now());
      });
      return;
    }
    if (s === undefined || s.ended) {
      const reason = this.core.wasExpired(r.sessionId) ? "expired" : "unknown";
      bump(failures, reason);
      return lost(reason);
    }
    const verdict = judgeResume(s.asResumeCandidate(), this.resumeAsk(r));
    if (verdict.kind === "violation") throw resumeViolation(r.lastSeq, s.lastAssignedSeq);
    if (verdict.kind === "refuse") {
      if (verdict.endsSession) this.core.endSession(s);
      bump(failures, verdict.reason);
      return lost(verdict.reason, verdict.endsSession ? s : undefined);
    }
    const old = s.conn;
    if (old !== undefined) {
      old.session = undefined;
      old.close(CloseCode.Normal, "resumed elsewhere");
    }
    this.continueSession(s, r, false);
  }

  /**
   * Holds this connection's frames until `p` settles (the handshake deadline still runs), then
   * runs `then` with its value and the held frames after it; `ifClosed` instead, when the
   * connection closed meanwhile.
   */
  private holdFramesUntil<T>(p: Promise<T>, then: (value: T) => void, ifClosed?: (value: T) => void): void {
    this.state = "handshake";
    this.waiting = [];
    void p.then((value) => {
      const waiting = this.waiting ?? [];
      this.waiting = undefined;
      if (this.state === "closed") {
        ifClosed?.(value);
        return;
      }
      this.state = "open";
      try {
        then(value);
        const again = this.waiting as Uint8Array[] | undefined;
        if (again !== undefined) {
          // `then` holds frames again (it waits for something else): these go first.
          again.unshift(...waiting);
          return;
        }
        for (const d of waiting) {
          if (this.state !== "open") break;
          this.process(d);
        }
      } catch (e) {
        this.fail(ProtocastError.from(e, Code.Internal));
      }
    });
  }

  /** What a Resume asks, with this connection's principal (session/resume.ts). */
  private resumeAsk(r: Resume): ResumeAsk {
    return { token: r.resumeToken, principal: this.principal.id, anonymous: this.principal.anonymous === true, lastSeq: r.lastSeq };
  }

  /** Attaches a resumed session: Resumed, the frames the client lacks, then channel re-syncs. */
  private continueSession(s: ServerSession, r: Resume, adopted: boolean): void {
    const anonymous = s.principal.anonymous === true && this.principal.anonymous === true;
    this.session = s;
    this.sessionId = s.id;
    // A named principal may come back with a fresher credential; an anonymous one keeps its id.
    if (anonymous) this.principal = s.principal;
    else s.principal = this.principal;
    s.attach(this);
    const l = this.core.limits;
    this.sendFrame({
      case: "resumed",
      value: {
        sessionId: s.id,
        // With a session store, what the store holds: a node continuing the session after this
        // one dies knows no more, and the client must keep every frame it may have to resend.
        lastSeq: s.ackable,
        pingIntervalMs: l.pingIntervalMs,
        pingTimeoutMs: l.pingTimeoutMs,
        maxEnvelopeBytes: l.maxEnvelopeBytes,
        expiresAtMs: this.principal.expiresAtMs ?? 0,
      },
    });
    this.core.counters.resumes++;
    s.replayAfter(r.lastSeq);
    s.resyncAll();
    if (s.fromStore) {
      s.fromStore = false;
      s.answerOrphans();
    }
    this.core.log("connect", this, { resumed: true, adopted });
  }

  /** Called once by the transport, whoever closed. */
  onClose(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.held = undefined;
    this.heldBytes = 0;
    this.heldPerChannel = undefined;
    const s = this.session;
    this.session = undefined;
    if (s !== undefined && s.conn === this) {
      // A close the server sent itself for a reason that keeps the session (slow consumer,
      // heartbeat, goaway) is judged by that code, not by what the socket reports.
      if (endsSession(this.closedWith ?? code)) this.core.endSession(s);
      else s.detach(this.core.now());
    }
    this.core.forget(this, code, reason);
  }
}

/** Heartbeat times, one object per server's limits: every connection shares it. */
const heartbeatTimesOf = new WeakMap<ServerLimits, HeartbeatTimes>();
function heartbeatTimes(l: ServerLimits): HeartbeatTimes {
  let t = heartbeatTimesOf.get(l);
  if (t === undefined) heartbeatTimesOf.set(l, (t = { intervalMs: l.pingIntervalMs, timeoutMs: l.pingTimeoutMs }));
  return t;
}

/** A Resume that claims frames the session never sent: a broken client (PROTOCOL.md 8.3), 4500. */
function resumeViolation(lastSeq: number, sent: number | undefined): ProtocastError {
  const what = sent === undefined ? "more than the session sent" : `only ${sent} were sent`;
  return new ProtocastError(Code.InvalidArgument, `resume from seq ${lastSeq}, but ${what}`, { closeCode: CloseCode.ProtocolViolation });
}
