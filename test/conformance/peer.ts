/**
 * A protocast.v1 client made of nothing but the `ws` package and the protobuf-es messages of
 * envelope.proto: what another implementation would write from PROTOCOL.md. It numbers,
 * acknowledges and answers Pings as the spec says (each of which a case may turn off), and
 * keeps every envelope it receives so that a case can look for what it expects.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { EnvelopeSchema, type Envelope, type Welcome } from "../../generated/protocast/v1/envelope_pb.js";

export type FrameInit = NonNullable<MessageInitShape<typeof EnvelopeSchema>["frame"]>;
export type FrameOf<K extends Envelope["frame"]["case"]> = Extract<Envelope["frame"], { case: K }>["value"];

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

export interface OpenOptions {
  /** Sent as `Authorization: Bearer`; none when undefined. */
  readonly token?: string;
  /** Subprotocols to offer. Default ["protocast.v1"]. */
  readonly protocols?: readonly string[];
  /** Answer Pings with Pongs. Default true. */
  readonly autoPong?: boolean;
  /** Acknowledge sequenced frames within 100 ms. Default true. */
  readonly autoAck?: boolean;
}

export const encode = <D extends DescMessage>(schema: D, init: MessageInitShape<D>): Uint8Array => toBinary(schema, create(schema, init));

export class Peer {
  readonly received: Envelope[] = [];
  /** Highest server seq received in order. */
  inSeq = 0;
  /** Seq of the last sequenced frame this peer sent. */
  outSeq = 0;
  private nextId = 1;
  private acked = 0;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private waiters = new Set<() => void>();
  readonly closed: Promise<Closed>;
  autoPong: boolean;
  autoAck: boolean;

  private constructor(
    readonly ws: WebSocket,
    options: OpenOptions,
  ) {
    this.autoPong = options.autoPong ?? true;
    this.autoAck = options.autoAck ?? true;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        clearTimeout(this.ackTimer);
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    ws.on("message", (data: Buffer, binary) => {
      if (!binary) return;
      const env = fromBinary(EnvelopeSchema, new Uint8Array(data));
      this.received.push(env);
      const seq = Number(env.seq);
      if (seq === this.inSeq + 1) this.inSeq = seq;
      if (env.frame.case === "ping" && this.autoPong) this.send({ case: "pong", value: { sentAtMs: env.frame.value.sentAtMs } });
      if (seq > 0 && this.autoAck) this.ackSoon();
      this.wake();
    });
  }

  /** Opens a WebSocket to `url`; resolves once it is open (status 101), rejects otherwise. */
  static open(url: string, options: OpenOptions = {}): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
      const ws = new WebSocket(url, [...(options.protocols ?? ["protocast.v1"])], { headers, maxPayload: 1 << 24 });
      const peer = new Peer(ws, options);
      ws.once("open", () => resolve(peer));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  /** Opens a connection and sends Hello; resolves with the Welcome. */
  static async hello(url: string, options: OpenOptions = {}): Promise<{ peer: Peer; welcome: Welcome }> {
    const peer = await Peer.open(url, options);
    peer.send({ case: "hello", value: { version: 1, client: "protocast-conformance" } });
    const welcome = await peer.next("welcome");
    return { peer, welcome };
  }

  private wake(): void {
    for (const w of Array.from(this.waiters)) w();
  }

  /** Sends an envelope as it is: no numbering. */
  sendEnvelope(init: MessageInitShape<typeof EnvelopeSchema>): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(toBinary(EnvelopeSchema, create(EnvelopeSchema, init)));
  }

  sendBytes(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  /** Sends a frame with the given seq (default 0) and the current acknowledgement. */
  send(frame: FrameInit, seq = 0): void {
    this.acked = this.autoAck ? this.inSeq : this.acked;
    this.sendEnvelope({ seq: BigInt(seq), ackSeq: BigInt(this.acked), frame });
  }

  /** Sends a sequenced frame with the next seq. */
  sendSequenced(frame: FrameInit): number {
    this.send(frame, ++this.outSeq);
    return this.outSeq;
  }

  takeId(): number {
    return this.nextId++;
  }

  /** Sends a Call; returns its id. */
  call(method: string, payload: Uint8Array, options: { timeoutMs?: number; key?: string; id?: number } = {}): number {
    const id = options.id ?? this.takeId();
    this.sendSequenced({ case: "call", value: { id, method, payload, timeoutMs: options.timeoutMs ?? 0, idempotencyKey: options.key ?? "" } });
    return id;
  }

  /** Sends a Call and waits for its Reply or Error. */
  async ask(method: string, payload: Uint8Array, options: { timeoutMs?: number; key?: string; waitMs?: number } = {}): Promise<Envelope["frame"]> {
    const id = this.call(method, payload, options);
    return (await this.next((e) => (e.frame.case === "reply" || e.frame.case === "error") && e.frame.value.id === id, options.waitMs)).frame;
  }

  subscribe(method: string, channel: string, recover?: { epoch: string; offset: number }): number {
    const id = this.takeId();
    const value = { id, method, channel, recover: recover !== undefined, epoch: recover?.epoch ?? "", offset: BigInt(recover?.offset ?? 0) };
    this.sendSequenced({ case: "subscribe", value });
    return id;
  }

  private ackSoon(): void {
    if (this.ackTimer !== undefined) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      if (this.inSeq > this.acked && this.autoAck) this.send({ case: "ack", value: {} });
    }, 100);
  }

  /**
   * The first received envelope (from the start) of frame kind `kind`, or matching `match`;
   * waits up to `timeoutMs` (default 10 s: generous, for loaded machines). Rejects when the connection closes without it.
   */
  next<K extends Envelope["frame"]["case"]>(kind: K, timeoutMs?: number): Promise<FrameOf<K>>;
  next(match: (e: Envelope) => boolean, timeoutMs?: number): Promise<Envelope>;
  next(what: string | ((e: Envelope) => boolean), timeoutMs = 10_000): Promise<unknown> {
    const match = typeof what === "string" ? (e: Envelope) => e.frame.case === what : what;
    const pick = (e: Envelope): unknown => (typeof what === "string" ? e.frame.value : e);
    return new Promise((resolve, reject) => {
      let closed = false;
      void this.closed.then(() => (closed = true));
      const check = (): boolean => {
        const found = this.received.find(match);
        if (found !== undefined) {
          done();
          resolve(pick(found));
          return true;
        }
        if (closed || this.ws.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`connection closed before ${typeof what === "string" ? what : "the expected envelope"}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${typeof what === "string" ? what : "expected envelope"} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (): void => void check();
      this.waiters.add(waiter);
      queueMicrotask(waiter);
    });
  }

  /** Resolves with the close code and reason, or rejects after `timeoutMs`. */
  closes(timeoutMs = 10_000): Promise<Closed> {
    return Promise.race([
      this.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs)),
    ]);
  }

  /** Whether the connection is still open after `ms`. */
  async staysOpen(ms: number): Promise<boolean> {
    const r = await Promise.race([this.closed.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), ms))]);
    return r;
  }

  close(code = 1000): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
  }

  /** Drops the TCP connection without a close frame (a network failure, 1006). */
  drop(): void {
    this.ws.terminate();
  }

  /** Stops reading from the socket (a client that does not keep up). */
  pause(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  resumeReading(): void {
    (this.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  }
}
