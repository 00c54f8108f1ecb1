// The public entry as Node resolves it (the "node" condition of "protocast"): the same API as
// the browser entry, with connect() backed by the `ws` package, so a Node client needs no
// global WebSocket (Node 20 has none) and never falls back to HTTP for the lack of one.
import WebSocket from "ws";
import { connect as connectWith, type Connection } from "./client/connection.js";
import type { ConnectOptions } from "./client/options.js";
import type { WebSocketFactory, WebSocketLike } from "./client/websocket-transport.js";

export * from "./index.js";

/** Node's `ws` as a WebSocket factory; maxPayload matches the server's default envelope limit. */
export const nodeWebSocket: WebSocketFactory = (url, protocols) =>
  // Offers permessage-deflate, as browsers do; a server without compression ignores the offer.
  // Each message is compressed on its own (no context kept), and only above 1 KiB.
  new WebSocket(url, protocols, {
    maxPayload: 64 * 1024,
    perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 1024 },
  }) as unknown as WebSocketLike;

/** connect() for Node: uses `ws` unless options.webSocket says otherwise. */
export function connect(url: string, options: ConnectOptions = {}): Connection {
  return connectWith(url, { webSocket: nodeWebSocket, ...options });
}
