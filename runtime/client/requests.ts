import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { MessageCodec } from "../codec/message-codec.js";
import { Code, codeFromWire } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { CallDef, ChannelDef } from "../service/define.js";
import { DeadlineSweep, type DeadlineHolder } from "../session/deadline-sweep.js";
import { DeadlineWheel } from "../session/deadline-wheel.js";
import type { ErrorFrame, Frame, Metadata as MetadataFrame } from "../wire/envelope.js";
import { messagingAttributes, rpcAttributes, type SpanStart } from "../session/tracing.js";
import { finishSpan, outgoing, traced, type MetadataSettings, type Outgoing } from "./outgoing.js";
import type { Link } from "./link.js";
import { keptByOutbox, type LiveOutbox } from "./outbox-api.js";
import type { CallOptions, PublishOptions } from "./types.js";

/**
 * One request waiting for its answer. It is the only object a request adds to the frame it
 * sends and the caller's promise: the deadline, the cancel signal and the decoding of the
 * answer all hang off it, so a call costs no timer and no closure of its own.
 */
class Pending {
  /** Whether the frame went out on the current session. */
  sent = false;
  /** Ticket of its deadline in the wheel. */
  deadline = 0;
  resolve!: (value: unknown) => void;
  reject!: (error: ProtocastError) => void;
  /** Listener on the caller's AbortSignal, when there is one. */
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly id: number,
    /** The frame to (re)send: a Call or a Publish. Its seq is assigned when it goes out. */
    readonly frame: Frame & { case: "call" | "publish" },
    /** Kept across a reconnect and sent again (idempotent calls, confirmed publishes). */
    readonly retry: boolean,
    readonly timeoutMs: number,
    /** Decodes a Reply's payload into the caller's result; without it the caller gets the bytes (or nothing, for a publish). */
    readonly codec: MessageCodec | undefined,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/**
 * The requests of one connection that wait for an answer: calls and confirmed publishes. Each
 * has a request id, a deadline and a rule for a lost connection (PROTOCOL.md 3.5, 7.3): after a
 * resume the server answers what it received; on a new session a request that was sent and may
 * not run twice fails, every other one is sent again.
 *
 * Deadlines sit in a DeadlineWheel, watched by one DeadlineSweep (one timer for the whole
 * connection, armed for the earliest deadline); a call answered in time touches no timer.
 */
export class Requests implements DeadlineHolder {
  private readonly pending = new Map<number, Pending>();
  private readonly deadlines = new DeadlineWheel<Pending>();
  private readonly sweep: DeadlineSweep;

  constructor(
    private readonly link: Link,
    private readonly outbox: LiveOutbox,
    private readonly now: () => number,
    private readonly settings: MetadataSettings,
  ) {
    this.sweep = new DeadlineSweep({ now, schedule: (fn, ms) => setTimeout(fn, ms), cancel: (t) => clearTimeout(t as ReturnType<typeof setTimeout>) });
  }

  /** Metadata and span of one request; nothing is made when there is no metadata and no tracing. */
  private outgoing(own: CallOptions["metadata"], span: () => SpanStart): Outgoing | undefined {
    const s = this.settings;
    if (own === undefined && s.metadata === undefined && s.tracing === undefined) return undefined;
    return outgoing(s, own, span);
  }

  /** Encodes the request, sends the Call and decodes the reply (PROTOCOL.md 3.5). */
  call<I extends DescMessage, O extends DescMessage>(def: CallDef<I, O, any>, request: MessageInitShape<I>, options?: CallOptions): Promise<MessageShape<O>> {
    if (this.link.ended) return Promise.reject(closed());
    const full = this.link.backlogFull();
    if (full !== undefined) return Promise.reject(full);
    const rules = def.rules;
    const payload = def.inputCodec.encode(request);
    const timeoutMs = options?.timeoutMs ?? rules.timeoutMs;
    const key = rules.idempotent ? (options?.idempotencyKey ?? randomKey()) : "";
    // Sent again on a new session unless the method is at-most-once (PROTOCOL.md 7.3).
    const retry = rules.delivery !== "at-most-once";
    let out: Outgoing | undefined;
    try {
      out = this.outgoing(options?.metadata, () => ({ name: def.path, kind: "client", attributes: rpcAttributes(def.path) }));
    } catch (e) {
      return Promise.reject(e);
    }
    const metadata = out?.metadata;
    if (!(this.outbox.enabled && keptByOutbox(rules))) {
      return traced(out?.span, this.start(callFrame(this.link.takeId(), def.path, payload, timeoutMs, key, metadata), retry, timeoutMs, def.outputCodec, options?.signal) as Promise<MessageShape<O>>);
    }
    // With an outbox, the call is stored before it is sent (outbox.ts), and the stored bytes and
    // metadata may be sent again by a later client: the outbox deals in bytes, decoded here.
    const record = { key, method: def.path, request: payload, timeoutMs, metadata };
    const answered = this.outbox.track(record, () => this.request(def.path, payload, key, timeoutMs, retry, options?.signal, metadata));
    return traced(out?.span, answered.then((bytes) => decodeReply(def.outputCodec, def.path, bytes) as MessageShape<O>));
  }

  /** Sends one Call and resolves with the reply's payload; the deadline, cancel and retry rules of PROTOCOL.md 3.5. */
  request(method: string, payload: Uint8Array, idempotencyKey: string, timeoutMs: number, retry: boolean, signal?: AbortSignal, metadata?: MetadataFrame): Promise<Uint8Array> {
    if (this.link.ended) return Promise.reject(closed());
    return this.start(callFrame(this.link.takeId(), method, payload, timeoutMs, idempotencyKey, metadata), retry, timeoutMs, undefined, signal) as Promise<Uint8Array>;
  }

  /** Publishes to a channel; with confirmation, resolves once the server accepted it (PROTOCOL.md 6.8). */
  publish<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, message: MessageInitShape<M>, options?: PublishOptions): Promise<void> {
    if (this.link.ended) return Promise.reject(closed());
    const full = this.link.backlogFull();
    if (full !== undefined) return Promise.reject(full);
    const channel = def.topic(params);
    const payload = def.messageCodec.encode(message);
    const reliable = def.rules.delivery !== "at-most-once";
    const confirm = options?.confirm ?? reliable;
    const idempotencyKey = def.rules.delivery === "exactly-once" ? randomKey() : "";
    let out: Outgoing | undefined;
    try {
      const pattern = def.rules.pattern;
      out = this.outgoing(options?.metadata, () => ({ name: `publish ${pattern}`, kind: "producer", attributes: messagingAttributes("publish", channel, pattern) }));
    } catch (e) {
      return Promise.reject(e);
    }
    const metadata = out?.metadata;
    if (!confirm) {
      const frame: Frame = { case: "publish", value: { id: 0, method: def.path, channel, payload, idempotencyKey, metadata } };
      const tooLarge = this.link.tooLarge(frame);
      if (out?.span !== undefined) finishSpan(out.span, tooLarge);
      if (tooLarge !== undefined) return Promise.reject(tooLarge);
      if (this.link.ready) this.link.sendSequenced(frame);
      return Promise.resolve();
    }
    const id = this.link.takeId();
    const frame = { case: "publish" as const, value: { id, method: def.path, channel, payload, idempotencyKey, metadata } };
    return traced(out?.span, this.start(frame, reliable, options?.timeoutMs ?? 10_000, undefined, undefined) as Promise<void>);
  }

  /** A Reply arrived: settles its request; a reply for an id no longer waiting is ignored. */
  onReply(id: number, payload: Uint8Array): void {
    const p = this.take(id);
    if (p === undefined) return;
    if (p.codec !== undefined) {
      let result: unknown;
      try {
        result = p.codec.decode(payload);
      } catch (e) {
        p.reject(new ProtocastError(Code.DataLoss, `reply of ${p.frame.value.method} does not decode`, { cause: e }));
        return;
      }
      p.resolve(result);
    } else {
      p.resolve(p.frame.case === "call" ? payload : undefined);
    }
  }

  /** An Error arrived: settles its request. False when no request has that id (it may be a Subscribe's). */
  onError(e: ErrorFrame): boolean {
    const p = this.pending.get(e.id);
    if (p === undefined) return false;
    if (p.retry && e.reason === "node_lost") {
      // The node that ran it died before answering; the node that continues the session
      // cannot know whether it ran. An idempotent request is safe to send again.
      p.sent = false;
      this.send(p);
      return true;
    }
    this.take(e.id);
    p.reject(new ProtocastError(codeFromWire(e.code), e.message, { reason: e.reason, retryAfterMs: e.retryAfterMs }));
    return true;
  }

  /** Whether a request went out on the current connection and waits for its answer. */
  get anySent(): boolean {
    for (const p of this.pending.values()) if (p.sent) return true;
    return false;
  }

  /**
   * A new session began: a request sent on the lost one that may not run twice fails (only the
   * application can decide whether to try again); the others wait to be sent. Returns the failed count.
   */
  sessionChanged(): number {
    let failed = 0;
    for (const p of Array.from(this.pending.values())) {
      if (p.sent && !p.retry) {
        failed++;
        this.take(p.id);
        p.reject(new ProtocastError(Code.Unavailable, "the session was lost before the answer arrived; not retried because it is not idempotent", { reason: "session_lost" }));
      } else {
        p.sent = false;
      }
    }
    return failed;
  }

  /** Sends the requests that have not gone out on the current session. */
  sendUnsent(): void {
    for (const p of Array.from(this.pending.values())) if (!p.sent) this.send(p);
  }

  /** The connection ended: every request fails with `err`, and the deadline timer stops. */
  failAll(err: ProtocastError): void {
    const all = Array.from(this.pending.values());
    this.pending.clear();
    this.deadlines.clear();
    this.sweep.close();
    for (const p of all) {
      if (p.onAbort !== undefined) p.signal!.removeEventListener("abort", p.onAbort);
      p.reject(err);
    }
  }

  /** Registers a request, arms its deadline and sends it when the session is open. */
  private start(frame: Pending["frame"], retry: boolean, timeoutMs: number, codec: MessageCodec | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    const p = new Pending(frame.value.id, frame, retry, timeoutMs, codec, signal);
    const promise = new Promise<unknown>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    if (signal !== undefined) {
      if (signal.aborted) {
        p.reject(canceled(frame.value.method));
        return promise;
      }
      p.onAbort = () => this.giveUp(p, canceled(frame.value.method));
      signal.addEventListener("abort", p.onAbort, { once: true });
    }
    p.deadline = this.deadlines.add(p, this.now() + timeoutMs);
    this.sweep.watch(this, this.deadlines.dueAt(p.deadline));
    this.pending.set(p.id, p);
    this.send(p);
    return promise;
  }

  private send(p: Pending): void {
    if (!this.link.ready) return;
    const tooLarge = this.link.tooLarge(p.frame);
    if (tooLarge !== undefined) {
      this.take(p.id);
      p.reject(tooLarge);
      return;
    }
    p.sent = true;
    this.link.sendSequenced(p.frame);
  }

  /** Removes a request from the map, its deadline and its signal; undefined when it no longer waits. */
  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    this.deadlines.delete(p, p.deadline);
    if (p.onAbort !== undefined) p.signal!.removeEventListener("abort", p.onAbort);
    return p;
  }

  /** The caller stopped waiting (deadline, abort): fails the request and tells the server when it has it. */
  private giveUp(p: Pending, err: ProtocastError): void {
    if (this.take(p.id) !== p) return;
    // A publish is not cancelled: once accepted it is out (PROTOCOL.md 6.8).
    if (p.frame.case === "call" && p.sent && this.link.attached) this.link.sendUnsequenced({ case: "cancel", value: { id: p.id } });
    p.reject(err);
  }

  /** The sweep's timer fired: fails the requests whose deadline passed; returns the next deadline. */
  expire(now: number): number {
    for (const p of this.deadlines.expire(now)) {
      // expire() already dropped it from the wheel; take() finds nothing to delete there.
      const what = p.frame.case === "call" ? `${p.frame.value.method} got no answer` : `publish to ${p.frame.value.channel} not confirmed`;
      this.giveUp(p, this.link.deadlineError(`${what} within ${p.timeoutMs} ms`));
    }
    return this.deadlines.nextAt ?? Infinity;
  }
}

function callFrame(id: number, method: string, payload: Uint8Array, timeoutMs: number, idempotencyKey: string, metadata: MetadataFrame | undefined): Pending["frame"] {
  return { case: "call", value: { id, method, payload, timeoutMs, idempotencyKey, metadata } };
}

function decodeReply(codec: MessageCodec, method: string, bytes: Uint8Array): unknown {
  try {
    return codec.decode(bytes);
  } catch (e) {
    throw new ProtocastError(Code.DataLoss, `reply of ${method} does not decode`, { cause: e });
  }
}

function closed(): ProtocastError {
  return new ProtocastError(Code.Unavailable, "connection is closed");
}

function canceled(method: string): ProtocastError {
  return new ProtocastError(Code.Canceled, `${method} was canceled`);
}

/** A fresh idempotency key: 16 random bytes in hex (PROTOCOL.md 5.2). */
export function randomKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
