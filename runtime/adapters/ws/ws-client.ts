import type { Socket } from "node:net";
import WebSocket from "ws";
import type { WebSocketFactory, WebSocketLike } from "../../client/websocket-transport.js";

/** Client sockets corked in this turn; one callback uncorks them all. */
const corkedSockets: Socket[] = [];
function uncorkAll(): void {
  for (const s of corkedSockets) s.uncork();
  corkedSockets.length = 0;
}

type SendOptions = { mask?: boolean; binary?: boolean; compress?: boolean; fin?: boolean };
type SendCallback = (err?: Error) => void;

/**
 * `ws`'s client WebSocket whose frames of one event-loop turn leave in one socket write. The
 * calls an application starts in one turn (pipelined calls, a reply's follow-ups) would
 * otherwise cost a system call each; the server side corks its writes the same way
 * (adapters/ws/ws-transport.ts). The socket is uncorked on the next tick, after the promise
 * callbacks of the turn have queued their frames.
 */
class CorkingWebSocket extends WebSocket {
  override send(data: Parameters<WebSocket["send"]>[0], cb?: SendCallback): void;
  override send(data: Parameters<WebSocket["send"]>[0], options: SendOptions, cb?: SendCallback): void;
  override send(data: Parameters<WebSocket["send"]>[0], options?: SendOptions | SendCallback, cb?: SendCallback): void {
    const socket = (this as unknown as { _socket?: Socket })._socket;
    if (this.readyState === WebSocket.OPEN && socket !== undefined && socket.writableCorked === 0) {
      socket.cork();
      if (corkedSockets.push(socket) === 1) process.nextTick(uncorkAll);
    }
    if (typeof options === "function") super.send(data, options);
    else super.send(data, options ?? {}, cb);
  }
}

/** Node's `ws` as a WebSocket factory; maxPayload matches the server's default envelope limit. */
export const nodeWebSocket: WebSocketFactory = (url, protocols) =>
  // Offers permessage-deflate, as browsers do; a server without compression ignores the offer.
  // Each message is compressed on its own (no context kept), and only above 1 KiB.
  new CorkingWebSocket(url, protocols, {
    maxPayload: 64 * 1024,
    perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 1024 },
  }) as unknown as WebSocketLike;
