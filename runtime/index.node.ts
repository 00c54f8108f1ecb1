// The public entry as Node resolves it (the "node" condition of "protocast"): the same API as
// the browser entry, with connect() backed by the `ws` package, so a Node client needs no
// global WebSocket (Node 20 has none) and never falls back to HTTP for the lack of one.
import { connect as connectWith, type Connection } from "./client/connection.js";
import type { ConnectOptions } from "./client/options.js";
import { nodeWebSocket } from "./adapters/ws/ws-client.js";

export * from "./index.js";
export { nodeWebSocket };

/** connect() for Node: uses `ws` unless options.webSocket says otherwise. */
export function connect(url: string, options: ConnectOptions = {}): Connection {
  return connectWith(url, { webSocket: nodeWebSocket, ...options });
}
