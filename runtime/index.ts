// Public entry of the Protocast runtime. Generated code imports only from here.
export { Code, codeName } from "./errors/code.js";
export { ProtocastError, type ProtocastErrorOptions } from "./errors/protocast-error.js";
export { CloseCode, shouldReconnect } from "./errors/close-codes.js";
export { defineService } from "./service/define.js";
export type { ServiceDefinition, CallDef, ChannelDef, EventDef, AnyMethodDef } from "./service/define.js";
export type { Delivery, Overflow, CallRules, ChannelRules, EventRules, MethodRules } from "./service/rules.js";
export type { CallContext, PublishContext, Principal, Publisher, PublishResult } from "./server/context.js";
export type {
  CallOptions,
  SubscribeOptions,
  PublishOptions,
  Subscription,
  SubscriptionEvents,
  ChannelMember,
  EventStream,
} from "./client/types.js";
export { connect, type Connection, type ConnectionState, type ConnectionEvents } from "./client/connection.js";
export type { ConnectOptions, TransportKind } from "./client/options.js";
export type { FetchLike } from "./client/http-transport.js";
export type { WebSocketFactory, WebSocketLike } from "./client/websocket-transport.js";
export { createClient } from "./client/create-client.js";
export type { BackoffOptions } from "./session/backoff.js";
export { backoffDelay } from "./session/backoff.js";
export type { Broker, BrokerEvent, BrokerGap, BrokerPosition, HistoryResult, ChannelHistoryOptions } from "./broker/broker.js";
export { createMemoryBroker, type MemoryBrokerOptions } from "./broker/memory.js";
export type { Transport, TransportHandler } from "./transport/transport.js";
export { createMemoryTransportPair, type MemoryTransportPair } from "./transport/memory.js";
export type { ServerLimits } from "./server/options.js";
export type { ClusterOptions } from "./server/cluster.js";
export { IdempotencyWindow, defaultIdempotencyLimits, type IdempotencyLimits } from "./session/idempotency-window.js";
export { createMemoryIdempotencyStore, type MemoryIdempotencyOptions, type IdempotencyStore, type BeginOptions, type StoreBeginResult } from "./broker/idempotency-store.js";
export { createMemorySessionStore, type SessionStore, type SessionWrite, type StoredSession } from "./broker/session-store.js";
