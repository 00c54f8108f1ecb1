import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { ChannelDef } from "../service/define.js";
import type { Transport, TransportHandler } from "../transport/transport.js";
import { decodeEnvelope } from "../wire/decode.js";
import { encodeEnvelope } from "../wire/encode.js";
import type { Call, Envelope, Frame, Member, Publish, Subscribe, Unsubscribe } from "../wire/envelope.js";
import type { CallContext, Principal } from "./context.js";
import type { HubMember } from "./hub.js";
import { randomId } from "./ids.js";
import { hasScope } from "./scopes.js";
import type { ServerCore } from "./server-core.js";

/** Connection states. handshake: waiting for Hello/Resume; open: serving; closed: gone. */
export type ConnectionState = "handshake" | "open" | "closed";

interface Sub {
  readonly def: ChannelDef;
  readonly member: HubMember;
  /** While true, live frames are held back until the Subscribed answer and replay are sent. */
  holding: boolean;
  held: { frame: Uint8Array; offset: number }[];
  /** Highest channel offset the client acknowledged (at-least-once channels). */
  ackedOffset: number;
}

/** Server side of one client connection. Frames in, frames out; no timers of its own. */
export class ServerConnection implements TransportHandler {
  state: ConnectionState = "handshake";
  readonly clientId = randomId(9);
  sessionId = "";
  readonly acceptedAt: number;
  /** Last time any frame arrived; the heartbeat tick reads it. */
  lastSeenAt: number;
  /** When the outstanding Ping was sent; 0 when none is outstanding. */
  pingSentAt = 0;
  lastPingAt: number;
  private outSeq = 0;
  /** Highest client seq received in order. */
  inSeq = 0;
  /** Highest inSeq the client has been told about. */
  ackedToPeer = 0;
  private readonly subs = new Map<string, Sub>();
  private readonly inflight = new Map<number, AbortController>();
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    private readonly core: ServerCore,
    private readonly transport: Transport,
    public principal: Principal,
    readonly remoteAddress: string,
  ) {
    this.acceptedAt = this.lastSeenAt = this.lastPingAt = core.now();
  }

  get member(): Member {
    return { clientId: this.clientId, principal: this.principal.id };
  }

  // ---- sending -------------------------------------------------------------------------

  /** Sends a frame addressed to this session: it takes the next seq and acks what we got. */
  sendSequenced(frame: Frame): void {
    this.sendEnvelope({ seq: ++this.outSeq, ackSeq: this.inSeq, frame });
  }

  sendUnsequenced(frame: Frame): void {
    this.sendEnvelope({ seq: 0, ackSeq: this.inSeq, frame });
  }

  private sendEnvelope(env: Envelope): void {
    if (this.state === "closed") return;
    this.ackedToPeer = env.ackSeq;
    this.sendBytes(encodeEnvelope(env));
  }

  /** Sends bytes shared with other connections (channel events, presence). */
  sendBytes(bytes: Uint8Array): void {
    if (this.state === "closed") return;
    this.bytesOut += bytes.byteLength;
    this.transport.send(bytes);
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.transport.close(code, reason);
  }

  private fail(err: ProtocastError): void {
    this.core.log("protocol_violation", this, { error: err.message });
    this.close(err.closeCode ?? CloseCode.ProtocolViolation, err.rawMessage.slice(0, 120));
  }

  private sendError(id: number, e: unknown): void {
    const err = ProtocastError.from(e, Code.Internal);
    const value = { id, code: err.code, message: err.rawMessage, reason: err.reason, retryAfterMs: err.retryAfterMs };
    this.sendSequenced({ case: "error", value });
  }

  // ---- receiving -----------------------------------------------------------------------

  onMessage(data: Uint8Array): void {
    if (this.state === "closed") return;
    this.lastSeenAt = this.core.now();
    this.pingSentAt = 0;
    this.bytesIn += data.byteLength;
    let env: Envelope;
    try {
      env = decodeEnvelope(data, { maxEnvelopeBytes: this.core.limits.maxEnvelopeBytes });
    } catch (e) {
      this.fail(ProtocastError.from(e, Code.InvalidArgument));
      return;
    }
    try {
      this.dispatch(env);
    } catch (e) {
      this.fail(ProtocastError.from(e, Code.Internal));
    }
  }

  private dispatch(env: Envelope): void {
    const frame = env.frame;
    if (this.state === "handshake") {
      this.handshake(frame);
      return;
    }
    if (env.seq !== 0) {
      if (env.seq <= this.inSeq) return; // a retransmitted frame we already have
      if (env.seq !== this.inSeq + 1) {
        throw new ProtocastError(Code.DataLoss, `sequence gap: expected ${this.inSeq + 1}, got ${env.seq}`, {
          closeCode: CloseCode.ProtocolViolation,
        });
      }
      this.inSeq = env.seq;
      this.core.scheduleAck(this);
    }
    switch (frame.case) {
      case "call":
        this.onCall(frame.value);
        return;
      case "cancel":
        this.inflight.get(frame.value.id)?.abort(new ProtocastError(Code.Canceled, "canceled by the client"));
        return;
      case "subscribe":
        void this.onSubscribe(frame.value);
        return;
      case "unsubscribe":
        this.onUnsubscribe(frame.value);
        return;
      case "publish":
        void this.onPublish(frame.value);
        return;
      case "ack":
        for (const p of frame.value.channels) {
          const sub = this.subs.get(p.channel);
          if (sub !== undefined && p.offset > sub.ackedOffset) sub.ackedOffset = p.offset;
        }
        return;
      case "ping":
        this.sendUnsequenced({ case: "pong", value: { sentAtMs: frame.value.sentAtMs } });
        return;
      case "pong":
        return;
      case "authRefresh":
        this.sendError(frame.value.id, new ProtocastError(Code.Unimplemented, "credential refresh on a live connection is not supported by this server"));
        return;
      default:
        throw new ProtocastError(Code.InvalidArgument, `unexpected ${frame.case} frame from a client`, {
          closeCode: CloseCode.ProtocolViolation,
        });
    }
  }

  private handshake(frame: Frame): void {
    if (frame.case !== "hello" && frame.case !== "resume") {
      throw new ProtocastError(Code.InvalidArgument, `expected hello or resume, got ${frame.case}`, {
        closeCode: CloseCode.ProtocolViolation,
      });
    }
    if (frame.value.version !== 1) {
      throw new ProtocastError(Code.FailedPrecondition, `protocol version ${frame.value.version} is not supported; this server speaks 1`, {
        closeCode: CloseCode.UnsupportedVersion,
      });
    }
    this.state = "open";
    this.sessionId = randomId();
    const l = this.core.limits;
    const lost =
      frame.case === "resume"
        ? { previousSessionId: frame.value.sessionId, reason: "unknown", lostFromSeq: 0, lostToSeq: 0 }
        : undefined;
    this.sendUnsequenced({
      case: "welcome",
      value: {
        version: 1,
        sessionId: this.sessionId,
        resumeToken: randomId(),
        pingIntervalMs: l.pingIntervalMs,
        pingTimeoutMs: l.pingTimeoutMs,
        maxEnvelopeBytes: l.maxEnvelopeBytes,
        expiresAtMs: this.principal.expiresAtMs ?? 0,
        sessionLost: lost,
        principal: this.principal.id,
      },
    });
    this.core.log("connect", this, {});
  }

  private onCall(call: Call): void {
    const { id } = call;
    if (this.inflight.has(id)) throw new ProtocastError(Code.InvalidArgument, `call id ${id} is already in flight`);
    const def = this.core.lookup(call.method);
    const handler = this.core.handlerFor(call.method);
    if (def === undefined || def.kind !== "call" || handler === undefined) {
      this.sendError(id, new ProtocastError(Code.Unimplemented, `method ${call.method} is not implemented`));
      return;
    }
    if (!hasScope(this.principal, def.rules.scope)) {
      this.sendError(id, new ProtocastError(Code.PermissionDenied, `${call.method} needs scope "${def.rules.scope}"`));
      return;
    }
    if (this.inflight.size >= this.core.limits.maxInflightCalls) {
      this.sendError(id, new ProtocastError(Code.ResourceExhausted, `more than ${this.core.limits.maxInflightCalls} calls in flight`, { reason: "max_inflight_calls" }));
      return;
    }
    let request;
    try {
      request = fromBinary(def.input, call.payload);
    } catch (e) {
      this.sendError(id, new ProtocastError(Code.InvalidArgument, `request of ${call.method} does not decode: ${String(e)}`));
      return;
    }
    const timeoutMs = Math.min(call.timeoutMs > 0 ? call.timeoutMs : def.rules.timeoutMs, this.core.limits.maxCallTimeoutMs);
    const ac = new AbortController();
    this.inflight.set(id, ac);
    const deadlineErr = new ProtocastError(Code.DeadlineExceeded, `${call.method} did not finish within ${timeoutMs} ms`);
    const timer = setTimeout(() => ac.abort(deadlineErr), timeoutMs);
    const ctx: CallContext = {
      principal: this.principal,
      sessionId: this.sessionId,
      method: call.method,
      signal: ac.signal,
      deadline: this.core.now() + timeoutMs,
      idempotencyKey: call.idempotencyKey,
      publish: (ch, params, msg) => this.core.publish(ch, params, msg),
      push: (ev, principalId, msg) => this.core.push(ev, principalId, msg),
    };
    const aborted = new Promise<never>((_, reject) => {
      ac.signal.addEventListener("abort", () => reject(ac.signal.reason), { once: true });
    });
    Promise.race([Promise.resolve().then(() => handler(request, ctx)), aborted])
      .then((result) => {
        const payload = toBinary(def.output, create(def.output, result as never));
        this.sendSequenced({ case: "reply", value: { id, payload } });
      })
      .catch((e: unknown) => this.sendError(id, e))
      .finally(() => {
        clearTimeout(timer);
        this.inflight.delete(id);
      });
  }

  private async onSubscribe(s: Subscribe): Promise<void> {
    const def = this.core.lookup(s.method);
    try {
      if (def === undefined || def.kind !== "channel") throw new ProtocastError(Code.NotFound, `no channel method ${s.method}`);
      if (def.parse(s.channel) === undefined) {
        throw new ProtocastError(Code.InvalidArgument, `channel "${s.channel}" does not match pattern "${def.rules.pattern}"`);
      }
      if (!hasScope(this.principal, def.rules.readScope)) {
        throw new ProtocastError(Code.PermissionDenied, `reading ${s.channel} needs scope "${def.rules.readScope}"`);
      }
      if (this.subs.has(s.channel)) throw new ProtocastError(Code.AlreadyExists, `already subscribed to ${s.channel}`);
      const l = this.core.limits;
      if (this.subs.size >= l.maxSubscriptionsPerConnection) {
        throw new ProtocastError(Code.ResourceExhausted, `a connection may hold at most ${l.maxSubscriptionsPerConnection} subscriptions`, { reason: "max_subscriptions" });
      }
      const maxMembers = def.rules.maxMembers || l.maxMembers;
      if (this.core.hub.size(s.channel) >= maxMembers) {
        throw new ProtocastError(Code.ResourceExhausted, `channel ${s.channel} is full (${maxMembers} members)`, { reason: "channel_full" });
      }
    } catch (e) {
      this.sendError(s.id, e);
      return;
    }
    const sub: Sub = {
      def,
      holding: true,
      held: [],
      ackedOffset: 0,
      member: {
        member: this.member,
        deliver: (_channel, frame, offset) => {
          if (sub.holding) sub.held.push({ frame, offset });
          else this.sendBytes(frame);
        },
      },
    };
    this.subs.set(s.channel, sub);
    try {
      await this.core.hub.join(def, s.channel, sub.member);
      const broker = this.core.broker;
      let cut: number;
      if (s.recover) {
        const hist = await broker.history(s.channel, { epoch: s.epoch, offset: s.offset }, this.core.limits.historySize * 10);
        if (this.subs.get(s.channel) !== sub) return;
        const last = hist.events.at(-1)?.offset ?? hist.position.offset;
        this.sendSubscribed(s, hist.position.epoch, Math.max(last, hist.position.offset), hist.gap === undefined, hist.gap);
        for (const ev of hist.events) {
          this.sendUnsequenced({ case: "event", value: { channel: s.channel, epoch: ev.epoch, offset: ev.offset, payload: ev.payload } });
        }
        cut = last;
      } else {
        const pos = await broker.position(s.channel);
        if (this.subs.get(s.channel) !== sub) return;
        this.sendSubscribed(s, pos.epoch, pos.offset, false, undefined);
        cut = pos.offset;
      }
      for (const h of sub.held) if (h.offset === 0 || h.offset > cut) this.sendBytes(h.frame);
      sub.held = [];
      sub.holding = false;
    } catch (e) {
      this.leave(s.channel);
      this.sendError(s.id, e);
    }
  }

  private sendSubscribed(s: Subscribe, epoch: string, offset: number, recovered: boolean, gap: { fromOffset: number; toOffset: number; reason: string } | undefined): void {
    const def = this.subs.get(s.channel)?.def;
    const members = def?.rules.presence ? this.core.hub.members(s.channel) : [];
    this.sendSequenced({
      case: "subscribed",
      value: { id: s.id, channel: s.channel, epoch, offset, recovered: s.recover && recovered, gap: s.recover ? gap : undefined, members },
    });
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
      if (def === undefined || def.kind !== "channel") throw new ProtocastError(Code.NotFound, `no channel method ${p.method}`);
      if (!def.rules.clientPublish) throw new ProtocastError(Code.PermissionDenied, `clients may not publish to ${def.rules.pattern}`);
      const params = def.parse(p.channel);
      if (params === undefined) throw new ProtocastError(Code.InvalidArgument, `channel "${p.channel}" does not match pattern "${def.rules.pattern}"`);
      if (!hasScope(this.principal, def.rules.publishScope)) {
        throw new ProtocastError(Code.PermissionDenied, `publishing to ${p.channel} needs scope "${def.rules.publishScope}"`);
      }
      let payload = p.payload;
      const hook = this.core.publishHookFor(p.method);
      if (hook !== undefined) {
        let message;
        try {
          message = fromBinary(def.message, payload);
        } catch (e) {
          throw new ProtocastError(Code.InvalidArgument, `message for ${p.channel} does not decode: ${String(e)}`);
        }
        const replaced = await hook(params, message, { principal: this.principal, sessionId: this.sessionId, channel: p.channel });
        if (replaced !== undefined) payload = toBinary(def.message, create(def.message, replaced as never));
      } else {
        try {
          fromBinary(def.message, payload);
        } catch (e) {
          throw new ProtocastError(Code.InvalidArgument, `message for ${p.channel} does not decode: ${String(e)}`);
        }
      }
      await this.core.publishBytes(def, p.channel, payload);
      if (p.id !== 0) this.sendSequenced({ case: "reply", value: { id: p.id, payload: new Uint8Array(0) } });
    } catch (e) {
      if (p.id !== 0) this.sendError(p.id, e);
    }
  }

  /** Called once by the transport, whoever closed. Releases everything the connection held. */
  onClose(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    for (const ac of this.inflight.values()) ac.abort(new ProtocastError(Code.Canceled, "connection closed"));
    this.inflight.clear();
    for (const channel of Array.from(this.subs.keys())) this.leave(channel);
    this.core.forget(this, code, reason);
  }
}
