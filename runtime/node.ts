// Node entry ("protocast/node"): everything of the public entry, the Node client, and the
// WebSocket server. Redis and NATS live in "protocast/redis" and "protocast/nats", metrics and
// logs in "protocast/ops", so that an application loads only the engines it installed.
export * from "./index.node.js";
export { createServer, type ProtocastServer, type ServerOptions, type UpgradeRequest } from "./adapters/node/node-server.js";
export type { ConnectionLogRecord } from "./server/server-core.js";
export type { ServerApi, ServerStats } from "./server/server-api.js";
export type { ServerCounters, ServerObserver } from "./server/counters.js";
export { ServerCore } from "./server/server-core.js";
export { defaultServerLimits } from "./server/options.js";
export type { CompressionOptions } from "./adapters/ws/compression.js";
export { defaultRefusalLog, type RefusalRecord, type RefusalLogOptions, type AuthFailureRecord } from "./server/refusal-log.js";

// The client outbox in a JSON file, for Node clients (ConnectOptions.outbox).
export { fileOutbox } from "./adapters/file/file-outbox.js";
