import type { Socket } from "node:net";
import * as wsModule from "ws";
import type { WebSocket } from "ws";
import type { Transport, TransportHandler } from "../../transport/transport.js";
import { deflateMessage, type CompressionSettings } from "./compression.js";

/**
 * Complete WebSocket frames of shared envelopes (channel events), built once per envelope and
 * written as they are to every subscriber's socket. Keyed by the envelope's bytes, which the
 * hub creates once per event; entries go when the event is no longer referenced.
 */
const framed = new WeakMap<Uint8Array, Buffer>();
/** The same, compressed, for sockets that negotiated permessage-deflate. */
const framedDeflated = new WeakMap<Uint8Array, Buffer>();

/** ws's frame builder (present at run time, missing from its type declarations). */
const Sender = (wsModule as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
}).Sender;

/** A complete binary frame of `payload`; rsv1 marks a compressed message. */
function frame(payload: Uint8Array, rsv1: boolean): Buffer {
  const parts = Sender.frame(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { fin: true, opcode: 2, mask: false, readOnly: true, rsv1 });
  return parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts);
}

function frameOnce(data: Uint8Array): Buffer {
  let f = framed.get(data);
  if (f === undefined) {
    f = frame(data, false);
    framed.set(data, f);
  }
  return f;
}

/**
 * The compressed frame of a shared envelope, made once per envelope. Every compressing socket
 * gets the same bytes: the server compresses with no context takeover and the full window,
 * which any client accepts unless it asked for a smaller server window (then it gets its own).
 */
function deflatedFrameOnce(data: Uint8Array, level: number): Buffer {
  let f = framedDeflated.get(data);
  if (f === undefined) {
    f = frame(deflateMessage(data, level, 15), true);
    framedDeflated.set(data, f);
  }
  return f;
}

/** Sockets corked in this turn; one callback uncorks them all. */
const corkedSockets: Socket[] = [];
function uncorkAll(): void {
  for (const s of corkedSockets) s.uncork();
  corkedSockets.length = 0;
}

function cork(socket: Socket): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  if (corkedSockets.push(socket) === 1) process.nextTick(uncorkAll);
}

/** Where a ws socket (and its net socket) keep their transport, for the shared listeners. */
const TRANSPORT = Symbol("protocast.transport");
type TaggedSocket = WebSocket & { [TRANSPORT]?: WsTransport };
type TaggedNetSocket = Socket & { [TRANSPORT]?: WsTransport };

function onWsMessage(this: TaggedSocket, data: Buffer, isBinary: boolean): void {
  this[TRANSPORT]?.onMessage(data, isBinary);
}
function onWsClose(this: TaggedSocket, code: number, reason: Buffer): void {
  this[TRANSPORT]?.onClose(code, reason);
}
function onWsError(this: TaggedSocket, err: Error & { code?: string }): void {
  this[TRANSPORT]?.onError(err);
}
function onSocketDrain(this: TaggedNetSocket): void {
  this[TRANSPORT]?.onDrain();
}

/**
 * A server-side `ws` socket as a Transport. Writes made in one event-loop turn, replies and
 * channel events alike, are corked into one socket write: with many small frames per turn
 * (pipelined calls, a broadcast), this is the difference between one syscall per frame and
 * one per batch. Frames are built by ws's own framer and written in call order; ws itself
 * writes only control frames (close, pong) here.
 */
export class WsTransport implements Transport {
  private errorCode: number | undefined;
  private handler: TransportHandler | undefined;
  private readonly socket: Socket | undefined;
  /** Set when this socket negotiated permessage-deflate: how to compress for it. */
  private readonly deflate: { readonly threshold: number; readonly level: number; readonly windowBits: number } | undefined;

  constructor(
    private readonly ws: WebSocket,
    compression?: CompressionSettings,
  ) {
    this.socket = (ws as unknown as { _socket?: Socket })._socket;
    const params = (ws as unknown as { _extensions?: Record<string, { params?: { server_max_window_bits?: number } } | undefined> })._extensions?.["permessage-deflate"]?.params;
    if (compression !== undefined && params !== undefined && this.socket !== undefined) {
      this.deflate = { threshold: compression.threshold, level: compression.level, windowBits: params.server_max_window_bits ?? 15 };
    }
  }

  /** Whether this connection compresses (it negotiated permessage-deflate with a server that offers it). */
  get compressing(): boolean {
    return this.deflate !== undefined;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  attach(handler: TransportHandler): void {
    // The listeners are shared by every connection (module functions, not closures): an idle
    // connection then costs no function objects of its own. They find their transport here.
    this.handler = handler;
    const ws = this.ws as TaggedSocket;
    ws[TRANSPORT] = this;
    ws.on("message", onWsMessage);
    ws.once("close", onWsClose);
    ws.on("error", onWsError);
    if (handler.onDrain !== undefined && this.socket !== undefined) {
      (this.socket as TaggedNetSocket)[TRANSPORT] = this;
      this.socket.on("drain", onSocketDrain);
    }
  }

  /** What arrived on the socket, for the shared listeners below. */
  onMessage(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.ws.close(1003, "text frames are not part of protocast.v1");
      return;
    }
    this.handler?.onMessage(data);
  }

  onClose(code: number, reason: Buffer): void {
    this.handler?.onClose(code === 1006 && this.errorCode !== undefined ? this.errorCode : code, reason.toString());
  }

  /**
   * ws closes the socket itself after a protocol error and may report 1006 to the close
   * listener; remember the code the error stands for, so that the session layer judges the
   * close by it (1002, 1007 and 1009 end a session).
   */
  onError(err: Error & { code?: string }): void {
    this.errorCode ??= err.code === "WS_ERR_INVALID_UTF8" ? 1007 : err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? 1009 : 1002;
  }

  onDrain(): void {
    this.handler?.onDrain?.();
  }

  send(data: Uint8Array): void {
    if (this.ws.readyState !== 1) return;
    const d = this.deflate;
    if (d !== undefined && this.socket !== undefined) {
      // Every frame of a compressing socket is written here, in call order: ws would compress
      // asynchronously and could reorder its frames with the shared ones written below.
      cork(this.socket);
      this.socket.write(data.byteLength >= d.threshold ? frame(deflateMessage(data, d.level, d.windowBits), true) : frame(data, false));
      return;
    }
    if (this.socket === undefined) {
      this.ws.send(data, { binary: true });
      return;
    }
    // One write of header and payload together, not ws.send()'s two: a reply is small, and
    // each write is a request the corked socket keeps until the turn's single writev.
    cork(this.socket);
    this.socket.write(frame(data, false));
  }

  /**
   * Sends an envelope shared by many connections: its frame is built once (and compressed once,
   * for the sockets that compress) and written straight to the socket. Safe because ws never
   * compresses or queues frames of its own here, so writes stay in call order.
   */
  sendShared(data: Uint8Array): void {
    const socket = this.socket;
    if (this.ws.readyState !== 1 || socket === undefined) return;
    cork(socket);
    const d = this.deflate;
    if (d === undefined || data.byteLength < d.threshold) socket.write(frameOnce(data));
    else if (d.windowBits === 15) socket.write(deflatedFrameOnce(data, d.level));
    else socket.write(frame(deflateMessage(data, d.level, d.windowBits), true));
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState <= 1) this.ws.close(code, reason);
  }

  abort(): void {
    this.ws.terminate();
  }
}
