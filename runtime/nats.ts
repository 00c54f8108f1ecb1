// NATS entry ("protocast/nats"): broker, session store and idempotency store on NATS with
// JetStream. Needs the optional peer dependencies `@nats-io/transport-node` and `@nats-io/jetstream`.
export { createNatsBroker, type NatsBroker, type NatsBrokerOptions } from "./adapters/nats/nats-broker.js";
export { createNatsSessionStore, type NatsSessionStoreOptions } from "./adapters/nats/nats-session-store.js";
export { createNatsIdempotencyStore, type NatsIdempotencyOptions } from "./adapters/nats/nats-idempotency.js";
