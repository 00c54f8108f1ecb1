// Node entry: everything of the public entry, plus the WebSocket server and a Node client.
import WebSocket from "ws";
import { connect as connectWith, type Connection } from "./client/connection.js";
import type { ConnectOptions } from "./client/options.js";
import type { WebSocketFactory, WebSocketLike } from "./client/websocket-transport.js";

export * from "./index.js";
export { createServer, type ProtocastServer, type ServerOptions, type UpgradeRequest, type AuthFailureRecord, type ServerStats } from "./adapters/ws-server.js";
export type { ConnectionLogRecord } from "./server/server-core.js";
export type { ServerCounters, ServerObserver } from "./server/counters.js";
export { ServerCore } from "./server/server-core.js";

/** Node's `ws` as a WebSocket factory; maxPayload matches the server's default envelope limit. */
export const nodeWebSocket: WebSocketFactory = (url, protocols) =>
  new WebSocket(url, protocols, { maxPayload: 64 * 1024, perMessageDeflate: false }) as unknown as WebSocketLike;

/** connect() for Node: uses `ws` unless options.webSocket says otherwise. */
export function connect(url: string, options: ConnectOptions = {}): Connection {
  return connectWith(url, { webSocket: nodeWebSocket, ...options });
}
export { createRedisBroker, type RedisBroker, type RedisBrokerOptions } from "./adapters/redis-broker.js";
export { createNatsBroker, type NatsBroker, type NatsBrokerOptions } from "./adapters/nats-broker.js";
export { createRedisSessionStore, type RedisSessionStoreOptions } from "./adapters/redis-session-store.js";
export { createNatsSessionStore, type NatsSessionStoreOptions } from "./adapters/nats-session-store.js";
export { createRedisIdempotencyStore, type RedisIdempotencyOptions } from "./adapters/redis-idempotency.js";
export { createNatsIdempotencyStore, type NatsIdempotencyOptions } from "./adapters/nats-idempotency.js";
