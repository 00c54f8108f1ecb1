import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";

/** Where every NATS adapter connects when given no servers. */
export const DEFAULT_NATS_SERVERS = "127.0.0.1:4222";

/**
 * A NATS connection as every adapter needs it: reconnects forever (the adapters bound how long
 * a caller waits), quickly, and gives up the first connect after the outage wait.
 */
export function connectNats(servers: string | string[] | undefined, outageWaitMs: number): Promise<NatsConnection> {
  return connect({ servers: servers ?? DEFAULT_NATS_SERVERS, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: Math.max(1_000, outageWaitMs) });
}

/**
 * Runs a new adapter's first setup (its stream or bucket); when that fails the adapter is
 * closed, so that its connection does not linger, and the failure is UNAVAILABLE.
 */
export async function readyOrClosed<T extends { close(): Promise<void> }>(adapter: T, setup: () => Promise<void>): Promise<T> {
  try {
    await setup();
  } catch (e) {
    await adapter.close();
    throw ProtocastError.from(e, Code.Unavailable);
  }
  return adapter;
}
