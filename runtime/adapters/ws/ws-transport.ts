import type { Socket } from "node:net";
import * as wsModule from "ws";
import type { WebSocket } from "ws";
import type { Transport, TransportHandler } from "../../transport/transport.js";

/**
 * Complete WebSocket frames of shared envelopes (channel events), built once per envelope and
 * written as they are to every subscriber's socket. Keyed by the envelope's bytes, which the
 * hub creates once per event; entries go when the event is no longer referenced.
 */
const framed = new WeakMap<Uint8Array, Buffer>();

/** ws's frame builder (present at run time, missing from its type declarations). */
const Sender = (wsModule as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
}).Sender;

function frameOnce(data: Uint8Array): Buffer {
  let f = framed.get(data);
  if (f === undefined) {
    const parts = Sender.frame(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
      fin: true,
      opcode: 2,
      mask: false,
      readOnly: true,
      rsv1: false,
    });
    const whole = parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts);
    framed.set(data, whole);
    return whole;
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

/**
 * A server-side `ws` socket as a Transport. Writes made in one event-loop turn are corked
 * into one socket write: with many small frames per turn (a broadcast), this is the
 * difference between one syscall per frame and one per batch.
 */
export class WsTransport implements Transport {
  private errorCode: number | undefined;
  private readonly socket: Socket | undefined;

  constructor(private readonly ws: WebSocket) {
    this.socket = (ws as unknown as { _socket?: Socket })._socket;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  attach(handler: TransportHandler): void {
    this.ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        this.ws.close(1003, "text frames are not part of protocast.v1");
        return;
      }
      handler.onMessage(data as Buffer);
    });
    this.ws.once("close", (code, reason) => handler.onClose(code === 1006 && this.errorCode !== undefined ? this.errorCode : code, reason.toString()));
    const onDrain = handler.onDrain;
    if (onDrain !== undefined) this.socket?.on("drain", () => onDrain.call(handler));
    // ws closes the socket itself after a protocol error and may report 1006 to the close
    // listener; remember the code the error stands for, so that the session layer judges the
    // close by it (1002, 1007 and 1009 end a session).
    this.ws.on("error", (err: Error & { code?: string }) => {
      this.errorCode ??= err.code === "WS_ERR_INVALID_UTF8" ? 1007 : err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? 1009 : 1002;
    });
  }

  send(data: Uint8Array): void {
    if (this.ws.readyState !== 1) return;
    if (this.socket !== undefined) cork(this.socket);
    this.ws.send(data, { binary: true });
  }

  /**
   * Sends an envelope shared by many connections: its frame is built once and written straight
   * to the socket. Safe because compression is off, so ws never queues frames of its own and
   * writes stay in call order.
   */
  sendShared(data: Uint8Array): void {
    const socket = this.socket;
    if (this.ws.readyState !== 1 || socket === undefined) return;
    cork(socket);
    socket.write(frameOnce(data));
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState <= 1) this.ws.close(code, reason);
  }

  abort(): void {
    this.ws.terminate();
  }
}
