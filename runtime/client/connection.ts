import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { CloseCode } from "../errors/close-codes.js";
import { Code, codeFromWire, codeName } from "../errors/code.js";
import { errorFromClose } from "../errors/close-reason.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { CallDef, ChannelDef, EventDef } from "../service/define.js";
import { backoffDelay, firstRetryDelay } from "../session/backoff.js";
import type { Transport } from "../transport/transport.js";
import { decodeFromServer, type NewerFrameEnvelope } from "../wire/decode.js";
import { encodeEnvelopeFromClient } from "../wire/encode.js";
import { Heartbeat } from "../session/heartbeat.js";
import { CONNECTION_TRANSITIONS, allows, type ConnectionState } from "../session/states.js";
import { Sequencer } from "../session/sequencer.js";
import type { Envelope, ErrorFrame, Frame, Resumed, Welcome } from "../wire/envelope.js";
import { entriesOf } from "../wire/metadata.js";
import { Channels } from "./channels.js";
import { Emitter } from "./emitter.js";
import { TransportNegotiator } from "./negotiate.js";
import { checkServerUrl, isFinal, safeUrl } from "./failures.js";
import { resolveConnectOptions, type ConnectOptions, type ResolvedConnectOptions, type TransportKind } from "./options.js";
import type { Connection, ConnectionEvents } from "./connection-api.js";
import type { Link } from "./link.js";
import { NO_OUTBOX, type LiveOutbox } from "./outbox-api.js";
import { Requests } from "./requests.js";
import type { CallOptions, EventStream, PublishOptions, SubscribeOptions, Subscription } from "./types.js";

export type { Connection, ConnectionEvents, ConnectionState };

/**
 * Opens a logical connection and keeps it open. Throws ProtocastError INVALID_ARGUMENT at once
 * for a URL that is not ws://, wss://, http:// or https:// (unless options.transport opens the
 * transports); every later failure is reported through the `error` event.
 */
export function connect(url: string, options: ConnectOptions = {}): Connection {
  const o = resolveConnectOptions(options);
  // A transport of the application's own may use any URL it likes.
  return new ConnectionImpl(o.customTransport === undefined ? checkServerUrl(url) : url, o);
}

/**
 * The shell of a connection: it opens transports (negotiate.ts), runs the handshake, numbers
 * and acknowledges frames (session/sequencer.ts), watches the server's liveness
 * (session/heartbeat.ts) and reconnects (session/backoff.ts). What travels over it is kept
 * elsewhere: requests and their answers in requests.ts, subscriptions and direct events in
 * channels.ts, both reaching the transport through the Link this class implements.
 */
class ConnectionImpl implements Connection, Link {
  state: ConnectionState = "connecting";

  get transportKind(): TransportKind | "custom" | undefined {
    return this.state === "open" ? this.kind : undefined;
  }
  sessionId = "";
  principal = "";
  private readonly emitter = new Emitter<ConnectionEvents>();
  /** Generation of the current transport; callbacks of older ones are ignored. */
  private gen = 0;
  private transport: Transport | undefined;
  private handshaking = false;
  /** The session to resume on the next connection; undefined before the first Welcome. */
  private resumable: { id: string; token: string } | undefined;
  private readonly negotiator: TransportNegotiator;
  /** The transport of the current connection. */
  private kind: TransportKind | "custom" | undefined;
  /** Both directions' numbering; sent frames wait in its log until acknowledged (session/sequencer.ts). */
  private readonly seq: Sequencer<Frame>;
  /** Watches the server's traffic: silence past ping interval + timeout drops the connection. */
  private readonly heartbeat: Heartbeat;
  private nextId = 1;
  private attempt = 0;
  /** When the connection last reached open. */
  private openedAt = 0;
  /** Calls and confirmed publishes waiting for an answer. */
  private readonly requests: Requests;
  /** Subscriptions and direct-event readers. */
  private readonly channels: Channels;
  private timers = { reconnect: undefined as Timer, open: undefined as Timer, ack: undefined as Timer, probe: undefined as Timer, watch: undefined as Interval };
  private minNextDelayMs = 0;
  /** Why the connection closed for good; undefined while it lives or after close(). */
  private closeError: ProtocastError | undefined;
  /** Why the latest attempt failed, for the messages of calls that time out meanwhile. */
  private lastError: ProtocastError | undefined;
  private readonly onOnline = (): void => this.retryNow();
  private readonly onOffline = (): void => this.drop(CloseCode.Abnormal, "network went offline");
  readonly outbox: LiveOutbox;

  constructor(
    private readonly url: string,
    private readonly o: ResolvedConnectOptions,
  ) {
    this.seq = new Sequencer(o.retransmit);
    // The real times come with Welcome or Resumed; these are the protocol's defaults.
    this.heartbeat = new Heartbeat("watcher", { intervalMs: 25_000, timeoutMs: 10_000 }, o.now());
    this.negotiator = new TransportNegotiator(o);
    const self = this;
    // The outbox's code comes with the store that configured it; without one, nothing is kept.
    this.outbox = o.outbox === undefined ? NO_OUTBOX : o.outbox.engine(o.outbox, {
      now: o.now,
      get closed() {
        return self.state === "closed" || self.state === "closing";
      },
      opened: () => this.opened(),
      // Same key, same bytes (PROTOCOL.md 5.2) and the metadata first sent; kept across
      // reconnects like any idempotent call.
      resend: (r) => this.requests.request(r.method, r.request, r.key, r.timeoutMs, true, undefined, entriesOf(r.metadata)),
    });
    this.requests = new Requests(this, this.outbox, o.now, o);
    this.channels = new Channels(this, o.tracing);
    const g = globalThis as { addEventListener?: (t: string, l: () => void) => void };
    if (o.watchNetwork && typeof g.addEventListener === "function") {
      g.addEventListener("online", this.onOnline);
      g.addEventListener("offline", this.onOffline);
    }
    void this.attemptOpen();
  }

  on<K extends keyof ConnectionEvents>(event: K, listener: (data: ConnectionEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  opened(): Promise<void> {
    if (this.state === "open") return Promise.resolve();
    if (this.state === "closed" || this.state === "closing") return Promise.reject(new ProtocastError(Code.Unavailable, "connection is closed"));
    return new Promise((resolve, reject) => {
      // Failed attempts emit `error` too; only the end of the connection rejects.
      const off = this.on("state", ({ newState }) => {
        if (newState === "open") {
          off();
          resolve();
        } else if (newState === "closed" || newState === "closing") {
          off();
          reject(this.closeError ?? new ProtocastError(Code.Canceled, "connection closed by the application"));
        }
      });
    });
  }

  private setState(next: ConnectionState, cause?: ProtocastError): void {
    const prev = this.state;
    if (prev === next) return;
    // The table of session/states.ts (PROTOCOL.md 8.7); the tests hold every move to it.
    if (!allows(CONNECTION_TRANSITIONS, prev, next)) this.o.debug?.(`unexpected state change ${prev} -> ${next}`);
    this.state = next;
    this.o.debug?.(`state ${prev} -> ${next}`, cause === undefined ? undefined : describe(cause));
    this.emitter.emit("state", { oldState: prev, newState: next });
  }

  // ---- lifecycle -----------------------------------------------------------------------

  private async attemptOpen(): Promise<void> {
    const g = ++this.gen;
    this.timers.open = setTimeout(() => {
      if (g === this.gen) this.drop(CloseCode.HandshakeTimeout, `not open after ${this.o.openTimeoutMs} ms`);
    }, this.o.openTimeoutMs);
    let transport: Transport;
    this.o.debug?.(`attempt ${this.attempt + 1} to ${safeUrl(this.url)}`, { transports: this.negotiator.preferred ?? this.o.transports.join(",") });
    try {
      const token = this.o.token === undefined ? undefined : await this.o.token();
      const opened = await this.negotiator.open(this.url, token);
      transport = opened.transport;
      if (g === this.gen) this.kind = opened.kind;
    } catch (e) {
      if (g === this.gen) this.onDown(CloseCode.Abnormal, "", ProtocastError.from(e, Code.Unavailable));
      return;
    }
    if (g !== this.gen) {
      transport.attach({ onMessage: () => undefined, onClose: () => undefined });
      transport.close(CloseCode.Normal, "superseded");
      return;
    }
    this.transport = transport;
    this.handshaking = true;
    this.o.debug?.(`${this.kind ?? "transport"} open, sending ${this.resumable === undefined ? "Hello" : "Resume"}`);
    this.seq.ackSent(0);
    transport.attach({
      onMessage: (data) => {
        if (g === this.gen) this.onMessage(data);
      },
      onClose: (code, reason) => {
        if (g === this.gen) this.onDown(code, reason);
      },
    });
    this.heartbeat.heard(this.o.now());
    const r = this.resumable;
    if (r === undefined) {
      this.sendRaw({ seq: 0, ackSeq: 0, frame: { case: "hello", value: { version: 1, client: this.o.clientName } } });
    } else {
      const value = { version: 1, sessionId: r.id, resumeToken: r.token, lastSeq: this.seq.inSeq, client: this.o.clientName };
      this.sendRaw({ seq: 0, ackSeq: 0, frame: { case: "resume", value } });
    }
  }

  /** Abandons the current transport at once (no waiting for a close handshake on a dead link). */
  private drop(code: number, reason: string): void {
    const t = this.transport;
    if (t === undefined && this.state !== "connecting" && this.state !== "reconnecting") return;
    this.gen++;
    // Never 1000 here: that would tell the server the session is over, and it is not.
    t?.close(code === CloseCode.Abnormal ? CloseCode.Reconnect : code, reason);
    this.onDown(code, reason);
  }

  /**
   * The transport is gone (or never came). `cause` is set when the attempt failed before a
   * transport existed; otherwise the close code and reason say why.
   */
  private onDown(code: number, reason: string, cause?: ProtocastError): void {
    // Judged before anything changes: a connection that never reached Welcome failed its attempt.
    const failedAttempt = this.state !== "open";
    this.transport = undefined;
    this.handshaking = false;
    clearTimeout(this.timers.open);
    clearTimeout(this.timers.probe);
    clearInterval(this.timers.watch);
    clearTimeout(this.timers.ack);
    this.timers.ack = undefined;
    // Pending requests wait: a resume delivers their answers, a new session decides per request.
    this.channels.deactivate();
    if (this.state === "closing" || this.state === "closed") return;
    const err = cause ?? errorFromClose(code, reason);
    this.lastError = err;
    const r = this.o.reconnect;
    if (r === undefined || isFinal(err)) {
      this.finish(err);
      return;
    }
    if (this.attempt >= r.maxAttempts) {
      const { reason: why, closeCode } = err;
      this.finish(new ProtocastError(Code.Unavailable, `gave up after ${this.attempt} reconnect attempts; last: ${err.rawMessage}`, { reason: why, cause: err, ...(closeCode === undefined ? {} : { closeCode }) }));
      return;
    }
    if (failedAttempt) this.emitter.emit("error", err);
    // A connection that had been up for a while goes back at once (within FIRST_RETRY_MS);
    // one that fails to open, or drops right after opening, backs off.
    const quick = !failedAttempt && this.o.now() - this.openedAt >= r.baseMs;
    const delay = Math.max(this.minNextDelayMs, quick ? firstRetryDelay(r, this.o.random) : backoffDelay(this.attempt, r, this.o.random));
    this.minNextDelayMs = 0;
    if (!quick) this.attempt++;
    this.o.debug?.(`${failedAttempt ? "attempt failed" : "connection lost"}; next attempt in ${Math.round(delay)} ms`, describe(err));
    this.setState("reconnecting");
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => void this.attemptOpen(), delay);
  }

  private retryNow(): void {
    if (this.state !== "reconnecting" || this.transport !== undefined) return;
    clearTimeout(this.timers.reconnect);
    void this.attemptOpen();
  }

  /** A new session: after the first Hello, or when a Resume could not be honoured. */
  private onWelcome(w: Welcome): void {
    this.maxEnvelopeBytes = w.maxEnvelopeBytes;
    const hadSession = this.resumable !== undefined;
    this.resumable = { id: w.sessionId, token: w.resumeToken };
    this.seq.reset();
    const failedCalls = this.requests.sessionChanged();
    this.channels.sessionChanged();
    this.opened_(w.sessionId, w.principal, w.pingIntervalMs, w.pingTimeoutMs);
    const lost = w.sessionLost;
    if (hadSession || lost !== undefined) {
      this.emitter.emit("sessionLost", {
        previousSessionId: lost?.previousSessionId ?? "",
        reason: lost?.reason ?? "unknown",
        lostFromSeq: lost?.lostFromSeq ?? 0,
        lostToSeq: lost?.lostToSeq ?? 0,
        failedCalls,
      });
    }
    this.emitter.emit("session", { sessionId: w.sessionId, principal: w.principal, previous: lost?.previousSessionId ?? "" });
    this.afterOpen();
  }

  /** The session continues: resend what the server lacks, then carry on. */
  private onResumed(r: Resumed): void {
    this.maxEnvelopeBytes = r.maxEnvelopeBytes;
    const frames = this.seq.resumeFrom(r.lastSeq);
    if (frames === undefined) {
      this.drop(CloseCode.ProtocolViolation, `the server resumed from seq ${r.lastSeq}, beyond the ${this.seq.outSeq} this client sent`);
      return;
    }
    this.opened_(r.sessionId, this.principal, r.pingIntervalMs, r.pingTimeoutMs);
    for (const f of frames) this.sendRaw({ seq: f.seq, ackSeq: this.seq.inSeq, frame: f.item });
    this.afterOpen();
  }

  private opened_(sessionId: string, principal: string, pingIntervalMs: number, pingTimeoutMs: number): void {
    this.handshaking = false;
    clearTimeout(this.timers.open);
    this.attempt = 0;
    this.openedAt = this.o.now();
    this.lastError = undefined;
    this.sessionId = sessionId;
    this.principal = principal;
    this.heartbeat.reset({ intervalMs: pingIntervalMs, timeoutMs: pingTimeoutMs }, this.o.now());
    clearInterval(this.timers.watch);
    this.scheduleUpgradeProbe();
    this.timers.watch = setInterval(() => {
      if (this.heartbeat.check(this.o.now()) === "timeout") this.drop(CloseCode.HeartbeatTimeout, "no traffic from the server");
    }, Math.max(100, Math.floor(pingTimeoutMs / 2)));
    this.setState("open");
  }

  /**
   * On the fallback, keep trying to move back to a WebSocket: when one opens, the connection
   * reconnects over it (and resumes the session).
   */
  private scheduleUpgradeProbe(): void {
    clearTimeout(this.timers.probe);
    if (this.kind !== "http" || !this.o.transports.includes("websocket")) return;
    const g = this.gen;
    this.timers.probe = setTimeout(() => {
      void (async () => {
        const token = this.o.token === undefined ? undefined : await this.o.token();
        try {
          const probe = await this.negotiator.webSocket(this.url, token);
          probe.attach({ onMessage: () => undefined, onClose: () => undefined });
          probe.close(CloseCode.Normal, "probe");
        } catch {
          if (g === this.gen) this.scheduleUpgradeProbe();
          return;
        }
        if (g !== this.gen) return;
        this.negotiator.preferred = "websocket";
        this.drop(CloseCode.Reconnect, "moving to WebSocket");
      })();
    }, this.o.upgradeProbeMs);
  }

  private afterOpen(): void {
    this.channels.subscribeUnknown();
    this.requests.sendUnsent();
  }

  private finish(error: ProtocastError | undefined): void {
    this.closeError = error;
    this.setState("closed", error);
    clearTimeout(this.timers.reconnect);
    const g = globalThis as { removeEventListener?: (t: string, l: () => void) => void };
    g.removeEventListener?.("online", this.onOnline);
    g.removeEventListener?.("offline", this.onOffline);
    const err = error ?? new ProtocastError(Code.Canceled, "connection closed by the application");
    this.requests.failAll(err);
    this.channels.finish(error, err);
    this.outbox.closed();
    if (error !== undefined) this.emitter.emit("error", error);
    this.emitter.clear();
  }

  close(): Promise<void> {
    if (this.state === "closed" || this.state === "closing") return Promise.resolve();
    this.setState("closing");
    const t = this.transport;
    this.gen++;
    this.transport = undefined;
    clearTimeout(this.timers.open);
    clearTimeout(this.timers.ack);
    clearTimeout(this.timers.probe);
    clearInterval(this.timers.watch);
    t?.close(CloseCode.Normal, "client closed");
    this.finish(undefined);
    return Promise.resolve();
  }

  // ---- frames --------------------------------------------------------------------------

  private sendRaw(env: Envelope): void {
    this.seq.ackSent(env.ackSeq);
    this.transport?.send(encodeEnvelopeFromClient(env));
  }

  get ready(): boolean {
    return this.state === "open" && this.transport !== undefined;
  }

  get attached(): boolean {
    return this.transport !== undefined;
  }

  get ended(): boolean {
    return this.state === "closed" || this.state === "closing";
  }

  sendUnsequenced(frame: Frame): void {
    if (this.transport !== undefined) this.sendRaw({ seq: 0, ackSeq: this.seq.inSeq, frame });
  }

  sendSequenced(frame: Frame): void {
    // The size is an estimate: what bounds the buffer is the number of frames and payload bytes.
    const seq = this.seq.number(frame, "payload" in frame.value ? frame.value.payload.byteLength + 32 : 32);
    this.sendRaw({ seq, ackSeq: this.seq.inSeq, frame });
  }

  private onMessage(data: Uint8Array): void {
    this.heartbeat.heard(this.o.now());
    let env: Envelope | NewerFrameEnvelope;
    try {
      env = decodeFromServer(data);
    } catch (e) {
      const code = e instanceof ProtocastError && e.closeCode !== undefined ? e.closeCode : CloseCode.ProtocolViolation;
      this.drop(code, "undecodable frame from the server");
      return;
    }
    let arrival;
    try {
      this.seq.acknowledged(env.ackSeq);
      arrival = this.seq.arrived(env.seq);
    } catch (e) {
      // An ack of something never sent, or a gap: the server is broken (PROTOCOL.md 4.2, 4.3).
      this.drop(CloseCode.ProtocolViolation, e instanceof Error ? e.message : String(e));
      return;
    }
    if (arrival === "duplicate") return; // already seen; its ack_seq counted
    if (arrival === "next") this.scheduleAck();
    const f = env.frame;
    if (f === undefined) return; // a frame kind newer than this client: ignored
    switch (f.case) {
      case "welcome":
        if (this.handshaking) this.onWelcome(f.value);
        return;
      case "resumed":
        if (this.handshaking) this.onResumed(f.value);
        return;
      case "reply":
        this.requests.onReply(f.value.id, f.value.payload);
        return;
      case "error":
        this.onErrorFrame(f.value);
        return;
      case "event":
        if (this.channels.onEvent(f.value)) this.scheduleAck();
        return;
      case "presence":
        this.channels.onPresence(f.value);
        return;
      case "subscribed":
        this.channels.onSubscribed(f.value);
        return;
      case "unsubscribed":
        this.channels.onUnsubscribed(f.value);
        return;
      case "push":
        this.channels.onPush(f.value);
        return;
      case "ping":
        this.sendRaw({ seq: 0, ackSeq: this.seq.inSeq, frame: { case: "pong", value: { sentAtMs: f.value.sentAtMs } } });
        return;
      case "authExpiring":
        void this.refreshCredential();
        return;
      case "goaway":
        this.onGoaway(f.value.reason, f.value.reconnectAfterMs, f.value.closeInMs);
        return;
      default:
        return; // pong, ack, auth frames: nothing to do in this release
    }
  }

  /**
   * The server asks this client to move. Calls already running finish on this connection
   * (up to the server's close delay); then it reconnects, after the suggested delay.
   */
  private onGoaway(reason: string, reconnectAfterMs: number, closeInMs: number): void {
    const g = this.gen;
    const leave = (): void => {
      if (g !== this.gen) return;
      this.minNextDelayMs = reconnectAfterMs;
      this.drop(CloseCode.Reconnect, reason || "server asked to reconnect");
    };
    const sentCalls = (): boolean => this.requests.anySent;
    if (!sentCalls()) {
      leave();
      return;
    }
    const until = this.o.now() + Math.max(0, closeInMs - 100);
    const check = setInterval(() => {
      if (g !== this.gen || !sentCalls() || this.o.now() >= until) {
        clearInterval(check);
        leave();
      }
    }, 20);
  }

  /** The server warned that the credential expires: fetch a fresh one and send it in-band. */
  private async refreshCredential(): Promise<void> {
    const get = this.o.token;
    if (get === undefined) return;
    const g = this.gen;
    let token: string;
    try {
      token = await get();
    } catch {
      return; // the server closes with 4005 at expiry; the reconnect asks for a token again
    }
    if (g !== this.gen || this.transport === undefined) return;
    this.sendRaw({ seq: 0, ackSeq: this.seq.inSeq, frame: { case: "authRefresh", value: { id: this.takeId(), token } } });
  }

  /**
   * Acknowledgements are batched (PROTOCOL.md 4.3). Every envelope sent carries ack_seq, so a
   * standalone Ack goes only when nothing else carried it: after the ack delay, or, once 64
   * frames wait, at the end of the current task. By then the calls the application made on
   * reading those frames have usually carried the acknowledgement, and a read that brought
   * hundreds of frames costs at most one Ack.
   */
  private scheduleAck(): void {
    if (this.seq.ackUrgent) {
      if (!this.ackQueued) {
        this.ackQueued = true;
        queueMicrotask(this.flushQueuedAck);
      }
      return;
    }
    if (this.timers.ack === undefined) this.timers.ack = setTimeout(this.onAckDelay, this.o.ackDelayMs);
  }

  private ackQueued = false;
  private readonly flushQueuedAck = (): void => {
    this.ackQueued = false;
    this.flushAck();
  };
  private readonly onAckDelay = (): void => {
    this.timers.ack = undefined;
    this.flushAck();
  };

  /** A standalone Ack with the channel positions not yet reported, if there is anything to say. */
  private flushAck(): void {
    if (this.transport === undefined || this.handshaking) return;
    const channels = this.channels.positionsToAck();
    if (channels.length > 0 || this.seq.ackOwed) {
      this.sendRaw({ seq: 0, ackSeq: this.seq.inSeq, frame: { case: "ack", value: { channels } } });
    }
  }

  private onErrorFrame(e: ErrorFrame): void {
    if (this.requests.onError(e)) return;
    this.channels.onError(e.id, new ProtocastError(codeFromWire(e.code), e.message, { reason: e.reason, retryAfterMs: e.retryAfterMs }));
  }

  /** A deadline error that says, when the connection is down, why it is. */
  deadlineError(message: string): ProtocastError {
    const last = this.state === "open" ? undefined : this.lastError;
    if (last === undefined) return new ProtocastError(Code.DeadlineExceeded, message);
    return new ProtocastError(Code.DeadlineExceeded, `${message}; not connected (${this.state}): ${last.rawMessage}`, { reason: last.reason, cause: last });
  }

  backlogFull(): ProtocastError | undefined {
    if (!this.seq.log.overflowing) return undefined;
    return new ProtocastError(Code.ResourceExhausted, `${this.seq.log.size} frames (${this.seq.log.bytes} bytes) wait for the server's acknowledgement`, {
      reason: "client_backlog_full",
    });
  }

  takeId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    return id;
  }

  /** Largest envelope the server accepts, from Welcome or Resumed; 0 before the first. */
  private maxEnvelopeBytes = 0;

  /**
   * The local failure for a request the server could not accept (PROTOCOL.md 3.5): sending it
   * would only close the connection with 1009. Measured exactly only when it could be close.
   */
  tooLarge(frame: Frame): ProtocastError | undefined {
    const max = this.maxEnvelopeBytes;
    if (max === 0 || !("payload" in frame.value) || frame.value.payload.byteLength + 4_096 < max) return undefined;
    const size = encodeEnvelopeFromClient({ seq: this.seq.outSeq + 1, ackSeq: this.seq.inSeq, frame }).byteLength;
    if (size <= max) return undefined;
    return new ProtocastError(Code.ResourceExhausted, `the request is ${size} bytes; the server accepts at most ${max}`, { reason: "request_too_large" });
  }

  // ---- what travels over the connection -------------------------------------------------

  call<I extends DescMessage, O extends DescMessage>(def: CallDef<I, O, any>, request: MessageInitShape<I>, options?: CallOptions): Promise<MessageShape<O>> {
    return this.requests.call(def, request, options);
  }

  publish<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, message: MessageInitShape<M>, options?: PublishOptions): Promise<void> {
    return this.requests.publish(def, params, message, options);
  }

  subscribe<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, options?: SubscribeOptions): Subscription<MessageShape<M>> {
    return this.channels.subscribe(def, params, options);
  }

  events<M extends DescMessage>(def: EventDef<M, any>): EventStream<MessageShape<M>> {
    return this.channels.events(def, this.state === "closed");
  }
}

/** An error's fields for a debug line. */
function describe(e: ProtocastError): Record<string, unknown> {
  return { code: codeName(e.code), reason: e.reason, closeCode: e.closeCode, message: e.rawMessage };
}

type Timer = ReturnType<typeof setTimeout> | undefined;
type Interval = ReturnType<typeof setInterval> | undefined;

