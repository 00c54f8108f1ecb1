import { expectBoolean, expectFunction, expectListOf, expectMethods, expectString, optionKeys, rejectUnknownOptions } from "../errors/check-options.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { defaultBackoff, type BackoffOptions } from "../session/backoff.js";
import { defaultRetransmitLimits, type RetransmitLimits } from "../session/retransmit-buffer.js";
import type { Transport } from "../transport/transport.js";
import type { FetchLike } from "./http-transport.js";
import { resolveOutbox, type OutboxOptions, type ResolvedOutbox } from "./outbox-options.js";
import type { OutboxStore } from "./outbox-store.js";
import type { WebSocketFactory } from "./websocket-transport.js";
import type { Tracing } from "../session/tracing.js";
import { DEFAULT_METADATA_LIMITS, metadataFrame, resolveMetadataLimits, type Metadata, type MetadataLimits } from "../wire/metadata.js";

/** The ways a client can reach a server. */
export type TransportKind = "websocket" | "http";

/** Options of connect(). Every field has a documented default. */
export interface ConnectOptions {
  /** Credential sent on the upgrade request (as a subprotocol value); called again on every reconnect. */
  readonly token?: string | (() => string | Promise<string>);
  /** Opens sockets. Default: the global WebSocket (browsers, Node 22+); the Node entry passes `ws`. */
  readonly webSocket?: WebSocketFactory;
  /** Opens a transport of the application's own instead of negotiating one (tests, custom links). */
  readonly transport?: (url: string, token: string | undefined) => Promise<Transport>;
  /**
   * Transports to try, in order: "websocket", then "http" (the fallback: a streamed response
   * down, POSTs up) when the upgrade is refused or does not open in time. What worked is
   * tried first on the next reconnect. Default ["websocket", "http"]; force one by naming it alone.
   */
  readonly transports?: readonly TransportKind[];
  /** How long a WebSocket may take to open before the fallback is tried. Default 3 000 ms. */
  readonly webSocketOpenTimeoutMs?: number;
  /** While on the fallback, how often to try moving back to a WebSocket. Default 30 000 ms. */
  readonly upgradeProbeMs?: number;
  /** fetch for the HTTP fallback. Default the platform's. */
  readonly fetch?: FetchLike;
  /** Bounds of the buffer of sent, unacknowledged frames. Default 10 000 frames, 4 MiB. */
  readonly retransmit?: Partial<RetransmitLimits>;
  /** Reconnect timing; `false` turns reconnecting off. Default: full jitter, 1 s base, factor 2, 30 s cap, no attempt limit. */
  readonly reconnect?: Partial<BackoffOptions> | false;
  /** How long opening a socket plus the Hello/Welcome exchange may take. Default 10 000 ms. */
  readonly openTimeoutMs?: number;
  /** Delay before a standalone Ack is sent for received frames. Default 200 ms. */
  readonly ackDelayMs?: number;
  /** Client name sent in Hello, for server logs. Default "protocast-js/0.1". */
  readonly clientName?: string;
  /** React to the browser's online/offline events (where they exist). Default true. */
  readonly watchNetwork?: boolean;
  /**
   * Logs what the connection does and why: state changes, each attempt and the cause of each
   * failure, backoff delays. `true` writes to console.debug; a function receives each line and
   * its fields. Credentials are never logged. Default false.
   */
  readonly debug?: boolean | DebugLogger;
  /**
   * Keeps exactly-once and idempotent at-least-once calls in a store until their outcome is
   * delivered, so that a client started after a reload or a crash sends them again under the
   * same keys and reports their outcomes (Connection.outbox, a generated client's
   * $recovered()). A store (indexedDbOutbox(name), memoryOutbox(), fileOutbox(path) from
   * "protocast/node", or an OutboxStore of your own), or `{ store, maxRecords, maxBytes,
   * maxAgeMs }`. Default none: calls live in memory only.
   */
  readonly outbox?: OutboxStore | OutboxOptions;
  /**
   * Metadata sent with every call and publish of the connection (PROTOCOL.md 3.8); a call's or
   * publish's own metadata is laid over it key by key. Checked here: INVALID_ARGUMENT
   * "bad_metadata" when it breaks the rules. Default none.
   */
  readonly metadata?: Metadata;
  /**
   * Bounds on the metadata of one call or publish, checked before it is sent. Defaults: those
   * of a default server (16 entries, 64-byte keys, 1 024-byte values, 4 096 bytes in all).
   */
  readonly metadataLimits?: Partial<MetadataLimits>;
  /**
   * Makes spans of calls, publishes and received events, and sends the trace context in the
   * metadata (`otelTracing()` from "protocast/otel"). Default: none, and nothing of tracing is
   * loaded or done.
   */
  readonly tracing?: Tracing;
  /** Clock and randomness, injectable for tests. */
  readonly now?: () => number;
  readonly random?: () => number;
}

/** Receives the connection's debug lines (ConnectOptions.debug). */
export type DebugLogger = (message: string, fields?: Readonly<Record<string, unknown>>) => void;

export interface ResolvedConnectOptions {
  readonly token: (() => string | Promise<string>) | undefined;
  readonly customTransport: ((url: string, token: string | undefined) => Promise<Transport>) | undefined;
  readonly webSocket: WebSocketFactory;
  readonly transports: readonly TransportKind[];
  readonly webSocketOpenTimeoutMs: number;
  readonly upgradeProbeMs: number;
  readonly fetch: FetchLike | undefined;
  readonly retransmit: RetransmitLimits;
  readonly reconnect: BackoffOptions | undefined;
  readonly openTimeoutMs: number;
  readonly ackDelayMs: number;
  readonly clientName: string;
  readonly watchNetwork: boolean;
  readonly debug: DebugLogger | undefined;
  readonly outbox: ResolvedOutbox | undefined;
  readonly metadata: Metadata | undefined;
  readonly metadataLimits: MetadataLimits;
  readonly tracing: Tracing | undefined;
  readonly now: () => number;
  readonly random: () => number;
}

/** Every option of connect(): a key missing here fails to compile (see the check below). */
const CONNECT_OPTION_KEYS = optionKeys<ConnectOptions>()(
  "token",
  "webSocket",
  "transport",
  "transports",
  "webSocketOpenTimeoutMs",
  "upgradeProbeMs",
  "fetch",
  "retransmit",
  "reconnect",
  "openTimeoutMs",
  "ackDelayMs",
  "clientName",
  "watchNetwork",
  "debug",
  "outbox",
  "metadata",
  "metadataLimits",
  "tracing",
  "now",
  "random",
);

/** Checks connect()'s options, naming the option at fault (INVALID_ARGUMENT, reason bad_option). */
function checkConnectOptions(options: ConnectOptions): void {
  const where = "connect";
  rejectUnknownOptions(where, options, CONNECT_OPTION_KEYS);
  if (options.token !== undefined && typeof options.token !== "string") expectFunction(where, "token", options.token);
  for (const name of ["webSocket", "transport", "fetch", "now", "random"] as const) expectFunction(where, name, options[name]);
  if (typeof options.debug !== "boolean") expectFunction(where, "debug", options.debug);
  expectListOf(where, "transports", options.transports, ["websocket", "http"]);
  expectBoolean(where, "watchNetwork", options.watchNetwork);
  expectString(where, "clientName", options.clientName);
  for (const name of ["webSocketOpenTimeoutMs", "upgradeProbeMs", "openTimeoutMs", "ackDelayMs"] as const) {
    const v = options[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new ProtocastError(Code.InvalidArgument, `${where}: option ${name} must be a positive integer of milliseconds, got ${String(v)}`, { reason: "bad_option" });
  }
  if (options.reconnect !== undefined && options.reconnect !== false) {
    rejectUnknownOptions(`${where} reconnect`, options.reconnect, ["baseMs", "factor", "capMs", "maxAttempts"]);
  }
  if (options.retransmit !== undefined) rejectUnknownOptions(`${where} retransmit`, options.retransmit, ["maxFrames", "maxBytes"]);
  if (options.metadataLimits !== undefined) rejectUnknownOptions(`${where} metadataLimits`, options.metadataLimits, Object.keys(DEFAULT_METADATA_LIMITS));
  expectMethods(where, "tracing", options.tracing, ["start", "inject", "run"]);
}

export function resolveConnectOptions(options: ConnectOptions): ResolvedConnectOptions {
  checkConnectOptions(options);
  const metadataLimits = resolveMetadataLimits(options.metadataLimits);
  // The defaults are checked once here, so that a bad one fails connect() rather than every call.
  metadataFrame(options.metadata, metadataLimits);
  const token = options.token;
  const ctor = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => unknown }).WebSocket;
  const webSocket =
    options.webSocket ??
    ((url: string, protocols: string[]) => {
      if (ctor === undefined) throw new Error("no global WebSocket here: import connect from \"protocast/node\" or pass options.webSocket");
      return new ctor(url, protocols) as ReturnType<WebSocketFactory>;
    });
  return {
    token: token === undefined ? undefined : typeof token === "string" ? () => token : token,
    customTransport: options.transport,
    webSocket,
    transports: options.transports ?? ["websocket", "http"],
    webSocketOpenTimeoutMs: options.webSocketOpenTimeoutMs ?? 3_000,
    upgradeProbeMs: options.upgradeProbeMs ?? 30_000,
    fetch: options.fetch,
    retransmit: { ...defaultRetransmitLimits, ...options.retransmit },
    reconnect: options.reconnect === false ? undefined : { ...defaultBackoff, ...options.reconnect },
    openTimeoutMs: options.openTimeoutMs ?? 10_000,
    ackDelayMs: options.ackDelayMs ?? 200,
    clientName: options.clientName ?? "protocast-js/0.1",
    watchNetwork: options.watchNetwork ?? true,
    debug: resolveDebug(options.debug),
    outbox: resolveOutbox("connect", options.outbox),
    metadata: options.metadata,
    metadataLimits,
    tracing: options.tracing,
    now: options.now ?? Date.now,
    random: options.random ?? Math.random,
  };
}

function resolveDebug(debug: boolean | DebugLogger | undefined): DebugLogger | undefined {
  if (typeof debug === "function") return debug;
  if (debug !== true) return undefined;
  return (message, fields) => {
    if (fields === undefined) console.debug(`[protocast] ${message}`);
    else console.debug(`[protocast] ${message}`, fields);
  };
}
