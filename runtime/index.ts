// Public entry of the Protocast runtime. Generated code imports only from here.
export { Code, codeName } from "./errors/code.js";
export { ProtocastError, type ProtocastErrorOptions } from "./errors/protocast-error.js";
export { CloseCode, shouldReconnect } from "./errors/close-codes.js";
export { defineService } from "./service/define.js";
export type { ServiceDefinition, CallDef, ChannelDef, EventDef, AnyMethodDef } from "./service/define.js";
export type { Delivery, Overflow, CallRules, ChannelRules, EventRules, MethodRules } from "./service/rules.js";
export type { CallContext, PublishContext, Principal, Publisher, PublishResult, ServerPublishOptions, AuthorizeRequest } from "./server/context.js";
export type {
  CallOptions,
  SubscribeOptions,
  PublishOptions,
  Subscription,
  SubscriptionEvents,
  ChannelMember,
  ChannelMessage,
  EventStream,
} from "./client/types.js";
// Metadata of calls, publishes and events, and the tracing seam ("protocast/otel" implements it).
export { DEFAULT_METADATA_LIMITS, type Metadata, type MetadataLimits } from "./wire/metadata.js";
export type { Tracing, TraceSpan, SpanStart, SpanKind } from "./session/tracing.js";
export { connect, type Connection, type ConnectionState, type ConnectionEvents } from "./client/connection.js";
export type { ConnectOptions, TransportKind, DebugLogger } from "./client/options.js";
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

// Binary codecs of user messages: the interface every method definition carries, and what
// generated *_protocast.ts files build their specialised codecs from.
export type { MessageCodec, PayloadLimits } from "./codec/message-codec.js";
export { DEFAULT_PAYLOAD_LIMITS } from "./codec/message-codec.js";
export { reflectionCodec } from "./codec/reflection-codec.js";
export { payloadCodec, type PayloadCodecParts } from "./codec/payload-codec.js";
export type { PayloadReader, UnknownField } from "./codec/payload-reader.js";
export type { PayloadWriter } from "./codec/payload-writer.js";
export { sizeVarint, sizeInt32, sizeSint32, sizeUtf8, sizeInt64, sizeUint64, sizeSint64, sizeUnknown, toBytes } from "./codec/payload-size.js";

// The client outbox: calls that survive a page reload or a restart (ConnectOptions.outbox).
export type { OutboxStore, OutboxRecord } from "./client/outbox-store.js";
export { memoryOutbox } from "./client/outbox-memory.js";
export { customOutbox } from "./client/outbox.js";
export { indexedDbOutbox, type IndexedDbOutboxOptions } from "./client/outbox-indexeddb.js";
export { defaultOutboxLimits, type OutboxLimits, type OutboxOptions } from "./client/outbox-options.js";
export type { Outbox, OutboxEvents, OutboxOutcome, OutboxRecovered, RecoveredReadOptions } from "./client/outbox-api.js";
export type { RecoveredCall } from "./client/outbox-recovered.js";
