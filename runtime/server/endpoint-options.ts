import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { expectBoolean, expectFunction, expectListOf, expectString, optionKeys, rejectUnknownOptions } from "../errors/check-options.js";
import type { UpgradeRequest } from "./admission.js";
import type { Principal } from "./context.js";
import type { ServerObserver } from "./counters.js";
import { SERVER_CORE_OPTION_KEYS, type ServerCoreOptions } from "./options.js";
import type { RefusalRecord } from "./refusal-log.js";
import type { ConnectionLogRecord } from "./server-core.js";

/**
 * The options of a server whatever platform carries it; a platform's createServer adds its own
 * (the Node one: `http` and `compression`). `Request` is what its authenticate hook sees.
 */
export interface EndpointOptions<Request extends UpgradeRequest = UpgradeRequest> extends ServerCoreOptions {
  /** URL path that accepts WebSocket upgrades. Default "/protocast". */
  readonly path?: string;
  /**
   * Decides who is connecting, before the session opens. Throw ProtocastError UNAUTHENTICATED
   * (close 4502 / HTTP 401), PERMISSION_DENIED (4503 / 403) or UNAVAILABLE (4007 / 503); the
   * error's message (and its snake_case `reason`, if set) travel to the client, so keep them
   * short and free of secrets. Default: everyone is an anonymous principal with every scope —
   * fine for demos, never for production.
   */
  readonly authenticate?: (request: Request) => Principal | Promise<Principal>;
  /**
   * Origins allowed to open a connection, such as "https://app.example.com". Default
   * undefined: any origin without cookies; with cookies only the server's own origin.
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Ways in: "websocket" (the upgrade) and "http" (the fallback for clients whose WebSocket is
   * blocked: a streamed response down, POSTs up). Default both.
   */
  readonly transports?: readonly ("websocket" | "http")[];
  /** Request headers an upgrade may carry; more are refused with 431. Default 100. */
  readonly maxHeaders?: number;
  /** Accept a credential in the `token` query parameter. Default false (URLs end up in logs). */
  readonly allowQueryToken?: boolean;
  /** Observes calls (latency by method and outcome), for metrics. */
  readonly observer?: ServerObserver;
  /**
   * Receives connection log records (connect, disconnect, refused attempts, protocol
   * violations). Default: refused attempts only, on console.warn, at most 10 lines a minute
   * (see defaultRefusalLog); pass `() => {}` to silence them.
   */
  readonly logger?: (record: ConnectionLogRecord | RefusalRecord) => void;
}

/** Every option of an endpoint: a key missing here fails to compile. */
export const ENDPOINT_OPTION_KEYS = optionKeys<EndpointOptions>()(
  ...SERVER_CORE_OPTION_KEYS,
  "path",
  "authenticate",
  "allowedOrigins",
  "transports",
  "maxHeaders",
  "allowQueryToken",
  "observer",
  "logger",
);

/** The options a platform adds: their names, and the check of their values. */
export interface PlatformOptions<O> {
  /** Every option of the platform's createServer, the endpoint's included. */
  readonly keys: readonly string[];
  /** Checks the platform's own options; runs right after the unknown-key check. */
  readonly check: (options: O) => void;
}

/** Checks what createServer was given beyond the core's options, naming the option at fault. */
export function checkEndpointOptions<O extends EndpointOptions>(options: O, platform: PlatformOptions<O>): void {
  const where = "createServer";
  if (typeof options !== "object" || options === null) throw new ProtocastError(Code.InvalidArgument, `${where}: options must be an object`, { reason: "bad_option" });
  rejectUnknownOptions(where, options, platform.keys);
  platform.check(options);
  expectString(where, "path", options.path, (p) => (p.startsWith("/") && !p.includes("?") ? undefined : 'must start with "/" and hold no query'));
  expectFunction(where, "authenticate", options.authenticate);
  expectFunction(where, "logger", options.logger);
  expectBoolean(where, "allowQueryToken", options.allowQueryToken);
  expectListOf(where, "transports", options.transports, ["websocket", "http"]);
  if (options.allowedOrigins !== undefined) {
    if (!Array.isArray(options.allowedOrigins)) throw new ProtocastError(Code.InvalidArgument, `${where}: option allowedOrigins must be a list of origins such as "https://app.example.com"`, { reason: "bad_option" });
    for (const o of options.allowedOrigins) {
      expectString(where, "allowedOrigins[]", o, (s) => (/^https?:\/\/[^/?#\s]+$/.test(s) ? undefined : 'must be an origin: scheme and host, such as "https://app.example.com", with no path'));
    }
  }
  if (options.maxHeaders !== undefined && (!Number.isInteger(options.maxHeaders) || options.maxHeaders < 1)) {
    throw new ProtocastError(Code.InvalidArgument, `${where}: option maxHeaders must be a positive integer, got ${String(options.maxHeaders)}`, { reason: "bad_option" });
  }
  if (options.observer !== undefined && (typeof options.observer !== "object" || options.observer === null)) {
    throw new ProtocastError(Code.InvalidArgument, `${where}: option observer must be an object (createMetrics().observer)`, { reason: "bad_option" });
  }
}
