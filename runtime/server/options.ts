import { ProtocastError } from "../errors/protocast-error.js";
import { expectFunction, expectMethods, optionKeys, rejectUnknownOptions } from "../errors/check-options.js";
import { Code } from "../errors/code.js";
import type { Broker } from "../broker/broker.js";
import type { IdempotencyStore } from "../broker/idempotency-store.js";
import type { ClusterOptions } from "./cluster.js";
import type { SessionStore } from "../broker/session-store.js";
import type { AuthorizeRequest, Principal } from "./context.js";
import type { Tracing } from "../session/tracing.js";
import { DEFAULT_METADATA_LIMITS } from "../wire/metadata.js";

/** Limits and timings of a server. Every field has a documented default. */
export interface ServerLimits {
  /** Server Ping interval. Default 25 000 ms. */
  readonly pingIntervalMs: number;
  /** Silence after a Ping before the connection is closed with 4001. Default 10 000 ms. */
  readonly pingTimeoutMs: number;
  /** Time from accept until Hello or Resume must have arrived, else close 4003. Default 5 000 ms. */
  readonly handshakeTimeoutMs: number;
  /** Largest envelope accepted, in bytes; larger frames close the connection with 1009. Default 65 536. */
  readonly maxEnvelopeBytes: number;
  /** Subscriptions one connection may hold. Default 512. */
  readonly maxSubscriptionsPerConnection: number;
  /** Calls one connection may have running at once. Default 256. */
  readonly maxInflightCalls: number;
  /** Subscribers of one channel when its .proto declares no max_members. Default 10 000. */
  readonly maxMembers: number;
  /** Events kept per channel for recovery when the .proto declares no history_size. Default 100. */
  readonly historySize: number;
  /** Age limit of history events when the .proto declares none. Default 300 000 ms (5 min). */
  readonly historyTtlMs: number;
  /** Longest a call may run, whatever the client asks. Default 60 000 ms. */
  readonly maxCallTimeoutMs: number;
  /** Delay before a standalone Ack is sent for received frames. Default 200 ms. */
  readonly ackDelayMs: number;
  /** How long a session whose connection dropped waits for a Resume; it stays in its channels meanwhile. Default 60 000 ms. */
  readonly graceMs: number;
  /** Unacknowledged frames a session holds for retransmission. Default 10 000. */
  readonly retransmitFrames: number;
  /** Unacknowledged bytes a session holds for retransmission. Default 4 MiB. */
  readonly retransmitBytes: number;
  /**
   * Longest a connection may live before the server sends Goaway and the client reconnects
   * (and resumes) — rotating connections keeps leaks and load imbalance bounded. Each
   * connection gets up to 10% less, so that connections opened together do not all rotate
   * together. Default 21 600 000 ms (6 h).
   */
  readonly maxConnectionLifetimeMs: number;
  /** After a Goaway, how long the client has to leave before the server closes with 4000. Default 5 000 ms. */
  readonly goawayCloseMs: number;
  /**
   * Bytes a connection may have queued for the network before it counts as slow; past it the
   * channel's overflow policy decides (drop, conflate, or close with 4002). Channel frames
   * held back for a slow at-most-once reader are bounded by the same number. Default 1 MiB.
   */
  readonly sendHighWaterMark: number;
  /** Frames a connection may send per second, on average. Default 1 000. */
  readonly rateMessagesPerSecond: number;
  /** Frames a connection may send in a burst above the average. Default 2 000. */
  readonly rateMessagesBurst: number;
  /** Bytes a connection may send per second, on average. Default 4 MiB. */
  readonly rateBytesPerSecond: number;
  /** Bytes a connection may send in a burst. Default 8 MiB. */
  readonly rateBytesBurst: number;
  /**
   * Frames refused by the rate limit, in a row, before the connection is closed with 4004.
   * Default 1 000.
   */
  readonly rateViolationsBeforeClose: number;
  /** How long before a credential expires the server sends AuthExpiring. Default 30 000 ms. */
  readonly refreshLeadMs: number;
  /** Connections one principal may hold at once (anonymous principals excepted); more are closed with 4006. Default 100. */
  readonly maxConnectionsPerPrincipal: number;
  /** How long the server waits for the peer to answer its close frame before dropping the link. Default 2 000 ms. */
  readonly closeTimeoutMs: number;
  /** Completed idempotency records kept per principal (per session for anonymous ones). Default 10 000. */
  readonly idempotencyKeys: number;
  /**
   * How long a completed idempotency record is kept. One sweep timer for all records expires them,
   * whether or not their principal calls again. Default 600 000 ms (10 min).
   */
  readonly idempotencyTtlMs: number;
  /**
   * Idempotency records this node keeps in memory, all principals and running ones included.
   * At the bound a new exactly-once request evicts the oldest completed record; when every
   * record is running it is refused with RESOURCE_EXHAUSTED "idempotency_window_full".
   * Default 100 000 (about 65 MB of small records). Unused with a shared store.
   */
  readonly maxIdempotencyRecords: number;
  /** Entries in the metadata of one call, publish or event (PROTOCOL.md 3.8). Default 16. */
  readonly maxMetadataEntries: number;
  /** Longest metadata key, in bytes. Default 64. */
  readonly maxMetadataKeyBytes: number;
  /** Longest metadata value, in bytes of UTF-8. Default 1 024. */
  readonly maxMetadataValueBytes: number;
  /** Bytes of all keys and values of one metadata together. Default 4 096. */
  readonly maxMetadataBytes: number;
}

export const defaultServerLimits: ServerLimits = {
  pingIntervalMs: 25_000,
  pingTimeoutMs: 10_000,
  handshakeTimeoutMs: 5_000,
  maxEnvelopeBytes: 64 * 1024,
  maxSubscriptionsPerConnection: 512,
  maxInflightCalls: 256,
  maxMembers: 10_000,
  historySize: 100,
  historyTtlMs: 300_000,
  maxCallTimeoutMs: 60_000,
  ackDelayMs: 200,
  graceMs: 60_000,
  retransmitFrames: 10_000,
  retransmitBytes: 4 * 1024 * 1024,
  maxConnectionLifetimeMs: 6 * 3_600_000,
  goawayCloseMs: 5_000,
  sendHighWaterMark: 1024 * 1024,
  closeTimeoutMs: 2_000,
  rateMessagesPerSecond: 1_000,
  rateMessagesBurst: 2_000,
  rateBytesPerSecond: 4 * 1024 * 1024,
  rateBytesBurst: 8 * 1024 * 1024,
  rateViolationsBeforeClose: 1_000,
  maxConnectionsPerPrincipal: 100,
  refreshLeadMs: 30_000,
  idempotencyKeys: 10_000,
  idempotencyTtlMs: 600_000,
  maxIdempotencyRecords: 100_000,
  ...DEFAULT_METADATA_LIMITS,
};

/** Options of the transport-independent server core. */
export interface ServerCoreOptions extends Partial<ServerLimits> {
  /** Carries channel traffic. Default: the embedded in-memory broker. */
  readonly broker?: Broker;
  /**
   * Where exactly-once requests are remembered. Pass a shared store (createRedisIdempotencyStore,
   * createNatsIdempotencyStore) so that a retry on another node still gets the first outcome.
   * Default: this node's memory, bounded by idempotencyKeys, maxIdempotencyRecords and
   * idempotencyTtlMs, and closed with the server.
   */
  readonly idempotency?: IdempotencyStore;
  /**
   * Decides, per call, subscribe and publish, beyond the declared scopes. Also asked again
   * for every subscription when the credential is refreshed. Default: everything the scopes
   * allow.
   */
  readonly authorize?: (request: AuthorizeRequest) => boolean | Promise<boolean>;
  /**
   * Checks a credential sent on a live connection (AuthRefresh) and returns the principal it
   * names, which must be the same one. Default: refuses every refresh with UNIMPLEMENTED and
   * keeps the connection (createServer passes its authenticate hook instead).
   */
  readonly reauthenticate?: (token: string, current: Principal) => Principal | Promise<Principal>;
  /**
   * Keeps sessions in a shared store (createRedisSessionStore): every frame addressed to a
   * session is stored before it is sent, so that when a node dies, its clients resume their
   * sessions on another node with nothing lost. Costs one store round trip per batch of
   * frames. Default: sessions live in their node's memory (and move between live nodes).
   */
  readonly sessions?: SessionStore;
  /**
   * Several nodes on one shared broker (any broker passed in here) form a cluster: sessions
   * resume on any node, presence and per-principal connection counts span the nodes, pushes
   * reach a principal wherever it is connected. `false` keeps this node to itself.
   */
  readonly cluster?: ClusterOptions | false;
  /**
   * Makes spans of calls, publishes and deliveries, continuing the trace context that arrives
   * in metadata (`otelTracing()` from "protocast/otel"). Default: none, and nothing of
   * tracing is loaded or done.
   */
  readonly tracing?: Tracing;
  /** Clock; tests inject a fake one. Default Date.now. */
  readonly now?: () => number;
}

/** Applies defaults and rejects values that cannot work, naming the option and the bound. */
export function resolveLimits(options: Partial<ServerLimits>): ServerLimits {
  const out: Record<string, number> = { ...defaultServerLimits };
  for (const key of Object.keys(defaultServerLimits) as (keyof ServerLimits)[]) {
    const v = options[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) {
      throw new ProtocastError(Code.InvalidArgument, `server option ${key} must be a positive integer, got ${String(v)}`);
    }
    out[key] = v;
  }
  const limits = out as unknown as ServerLimits;
  if (limits.maxEnvelopeBytes < 256) {
    throw new ProtocastError(Code.InvalidArgument, `server option maxEnvelopeBytes must be at least 256, got ${limits.maxEnvelopeBytes}`);
  }
  return limits;
}

/** Every option of the server core: a key missing here fails to compile (see the check below). */
export const SERVER_CORE_OPTION_KEYS = optionKeys<ServerCoreOptions>()(
  ...(Object.keys(defaultServerLimits) as (keyof ServerLimits)[]),
  "broker",
  "idempotency",
  "authorize",
  "reauthenticate",
  "sessions",
  "cluster",
  "tracing",
  "now",
);

/** Checks the objects and functions among the options; limits are checked by resolveLimits. */
export function checkCoreOptions(where: string, options: ServerCoreOptions): void {
  expectMethods(where, "broker", options.broker, ["publish", "subscribe", "position", "history", "close"]);
  expectMethods(where, "idempotency", options.idempotency, ["begin", "complete", "forget", "close"]);
  expectMethods(where, "sessions", options.sessions, ["write", "claim", "remove", "close"]);
  expectFunction(where, "authorize", options.authorize);
  expectFunction(where, "reauthenticate", options.reauthenticate);
  expectFunction(where, "now", options.now);
  expectMethods(where, "tracing", options.tracing, ["start", "inject", "run"]);
  const cluster: unknown = options.cluster;
  if (cluster !== undefined && cluster !== false) {
    if (typeof cluster !== "object" || cluster === null) throw new ProtocastError(Code.InvalidArgument, `${where}: option cluster must be false or an object, got ${String(cluster)}`, { reason: "bad_option" });
    rejectUnknownOptions(`${where} cluster`, cluster, ["heartbeatMs", "nodeTimeoutMs", "requestTimeoutMs"]);
    for (const [k, v] of Object.entries(cluster)) {
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new ProtocastError(Code.InvalidArgument, `${where}: option cluster.${k} must be a positive integer, got ${String(v)}`, { reason: "bad_option" });
    }
  }
}
