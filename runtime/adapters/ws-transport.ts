import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import type { Transport, TransportHandler } from "../transport/transport.js";

/**
 * A server-side `ws` socket as a Transport. Writes made in one event-loop turn are corked
 * into one socket write: with many small frames per turn (a broadcast), this is the
 * difference between one syscall per frame and one per batch.
 */
export class WsTransport implements Transport {
  private corked = false;
  private errorCode: number | undefined;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket?.uncork();
  };
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
    if (!this.corked && this.socket !== undefined) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.ws.send(data, { binary: true });
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState <= 1) this.ws.close(code, reason);
  }

  abort(): void {
    this.ws.terminate();
  }
}
