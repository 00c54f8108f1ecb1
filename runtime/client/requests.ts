import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Code, codeFromWire } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { CallDef, ChannelDef } from "../service/define.js";
import type { ErrorFrame, Frame } from "../wire/envelope.js";
import type { Link } from "./link.js";
import { keptByOutbox, type OutboxImpl } from "./outbox.js";
import type { CallOptions, PublishOptions } from "./types.js";

interface Pending {
  readonly id: number;
  /** The frame to (re)send; its seq is assigned when it goes out. */
  readonly frame: Frame;
  /** Kept across a reconnect and sent again (idempotent calls, confirmed publishes). */
  readonly retry: boolean;
  readonly onReply: (payload: Uint8Array) => void;
  readonly onError: (e: ProtocastError) => void;
  sent: boolean;
}

/**
 * The requests of one connection that wait for an answer: calls and confirmed publishes. Each
 * has a request id, a deadline and a rule for a lost connection (PROTOCOL.md 3.5, 7.3): after a
 * resume the server answers what it received; on a new session a request that was sent and may
 * not run twice fails, every other one is sent again.
 */
export class Requests {
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly link: Link,
    private readonly outbox: OutboxImpl,
  ) {}

  /** Encodes the request, sends the Call and decodes the reply (PROTOCOL.md 3.5). */
  call<I extends DescMessage, O extends DescMessage>(def: CallDef<I, O, any>, request: MessageInitShape<I>, options: CallOptions = {}): Promise<MessageShape<O>> {
    if (this.link.ended) return Promise.reject(new ProtocastError(Code.Unavailable, "connection is closed"));
    const full = this.link.backlogFull();
    if (full !== undefined) return Promise.reject(full);
    const payload = def.inputCodec.encode(request);
    const timeoutMs = options.timeoutMs ?? def.rules.timeoutMs;
    const idempotencyKey = def.rules.idempotent ? (options.idempotencyKey ?? randomKey()) : "";
    // Sent again on a new session unless the method is at-most-once (PROTOCOL.md 7.3).
    const send = (): Promise<Uint8Array> => this.request(def.path, payload, idempotencyKey, timeoutMs, def.rules.delivery !== "at-most-once", options.signal);
    // With an outbox, the call is stored before it is sent (outbox.ts).
    const answered = this.outbox.enabled && keptByOutbox(def.rules) ? this.outbox.track({ key: idempotencyKey, method: def.path, request: payload, timeoutMs }, send) : send();
    return answered.then((bytes) => {
      try {
        return def.outputCodec.decode(bytes);
      } catch (e) {
        throw new ProtocastError(Code.DataLoss, `reply of ${def.path} does not decode`, { cause: e });
      }
    });
  }

  /** Sends one Call and resolves with the reply's payload; the deadline, cancel and retry rules of PROTOCOL.md 3.5. */
  request(method: string, payload: Uint8Array, idempotencyKey: string, timeoutMs: number, retry: boolean, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.link.ended) return Promise.reject(new ProtocastError(Code.Unavailable, "connection is closed"));
    const id = this.link.takeId();
    return new Promise<Uint8Array>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const giveUp = (err: ProtocastError): void => {
        const p = this.pending.get(id);
        if (p === undefined) return;
        this.pending.delete(id);
        if (p.sent && this.link.attached) this.link.sendUnsequenced({ case: "cancel", value: { id } });
        p.onError(err);
      };
      const timer = setTimeout(() => giveUp(this.link.deadlineError(`${method} got no answer within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => giveUp(new ProtocastError(Code.Canceled, `${method} was canceled`));
      const p: Pending = {
        id,
        retry,
        sent: false,
        frame: { case: "call", value: { id, method, payload, timeoutMs, idempotencyKey } },
        onReply: (bytes) => {
          cleanup();
          resolve(bytes);
        },
        onError: (e) => {
          cleanup();
          reject(e);
        },
      };
      if (signal?.aborted === true) {
        cleanup();
        reject(new ProtocastError(Code.Canceled, `${method} was canceled`));
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, p);
      this.send(p);
    });
  }

  /** Publishes to a channel; with confirmation, resolves once the server accepted it (PROTOCOL.md 6.8). */
  publish<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, message: MessageInitShape<M>, options: PublishOptions = {}): Promise<void> {
    if (this.link.ended) return Promise.reject(new ProtocastError(Code.Unavailable, "connection is closed"));
    const full = this.link.backlogFull();
    if (full !== undefined) return Promise.reject(full);
    const channel = def.topic(params);
    const payload = def.messageCodec.encode(message);
    const reliable = def.rules.delivery !== "at-most-once";
    const confirm = options.confirm ?? reliable;
    const key = def.rules.delivery === "exactly-once" ? randomKey() : "";
    if (!confirm) {
      const frame: Frame = { case: "publish", value: { id: 0, method: def.path, channel, payload, idempotencyKey: key } };
      const tooLarge = this.link.tooLarge(frame);
      if (tooLarge !== undefined) return Promise.reject(tooLarge);
      if (this.link.ready) this.link.sendSequenced(frame);
      return Promise.resolve();
    }
    const id = this.link.takeId();
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(this.link.deadlineError(`publish to ${channel} not confirmed within ${timeoutMs} ms`));
      }, timeoutMs);
      const p: Pending = {
        id,
        retry: reliable,
        sent: false,
        frame: { case: "publish", value: { id, method: def.path, channel, payload, idempotencyKey: key } },
        onReply: () => {
          clearTimeout(timer);
          resolve();
        },
        onError: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.pending.set(id, p);
      this.send(p);
    });
  }

  /** A Reply arrived: settles its request; a reply for an id no longer waiting is ignored. */
  onReply(id: number, payload: Uint8Array): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    p.onReply(payload);
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
    this.pending.delete(e.id);
    p.onError(new ProtocastError(codeFromWire(e.code), e.message, { reason: e.reason, retryAfterMs: e.retryAfterMs }));
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
    for (const [id, p] of this.pending) {
      if (p.sent && !p.retry) {
        this.pending.delete(id);
        failed++;
        p.onError(new ProtocastError(Code.Unavailable, "the session was lost before the answer arrived; not retried because it is not idempotent", { reason: "session_lost" }));
      } else {
        p.sent = false;
      }
    }
    return failed;
  }

  /** Sends the requests that have not gone out on the current session. */
  sendUnsent(): void {
    for (const p of this.pending.values()) if (!p.sent) this.send(p);
  }

  /** The connection ended: every request fails with `err`. */
  failAll(err: ProtocastError): void {
    for (const p of this.pending.values()) p.onError(err);
    this.pending.clear();
  }

  private send(p: Pending): void {
    if (!this.link.ready) return;
    const tooLarge = this.link.tooLarge(p.frame);
    if (tooLarge !== undefined) {
      this.pending.delete(p.id);
      p.onError(tooLarge);
      return;
    }
    p.sent = true;
    this.link.sendSequenced(p.frame);
  }
}

/** A fresh idempotency key: 16 random bytes in hex (PROTOCOL.md 5.2). */
export function randomKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
