import { connect, type NatsConnection } from "@nats-io/transport-node";

/** Where every NATS adapter connects when given no servers. */
export const DEFAULT_NATS_SERVERS = "127.0.0.1:4222";

/**
 * A NATS connection as every adapter needs it: reconnects forever (the adapters bound how long
 * a caller waits), quickly, and gives up the first connect after the outage wait.
 */
export function connectNats(servers: string | string[] | undefined, outageWaitMs: number): Promise<NatsConnection> {
  return connect({ servers: servers ?? DEFAULT_NATS_SERVERS, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: Math.max(1_000, outageWaitMs) });
}
