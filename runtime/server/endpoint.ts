// One Protocast endpoint, whatever carries its connections: the server core, and the way in
// that every transport shares (options, the upgrade decision, admission, refusal reports).
// Platform adapters add the sockets: the Node one (adapters/node) plugs the `ws` server and
// the HTTP fallback into it.
import { admit, type AdmissionOptions, type AdmissionRequest, type Refusal } from "./admission.js";
import type { Principal } from "./context.js";
import { bump } from "./counters.js";
import { checkEndpointOptions, type EndpointOptions, type PlatformOptions } from "./endpoint-options.js";
import { defaultRefusalLog } from "./refusal-log.js";
import { ServerCore } from "./server-core.js";
import { decideUpgrade, type UpgradeDecision, type UpgradeDescription } from "./upgrade.js";

export interface Endpoint {
  readonly core: ServerCore;
  /** URL path of the endpoint; the HTTP fallback lives under it. */
  readonly path: string;
  readonly transports: readonly ("websocket" | "http")[];
  /** Decides an upgrade request for this endpoint as it is now (shutting down or not). */
  decide(request: UpgradeDescription): UpgradeDecision;
  /** Origin, credential and the authenticate hook: the principal, or a rejection (see asRefusal). */
  admit(request: AdmissionRequest, offeredProtocols: readonly string[]): Promise<Principal>;
  /**
   * Counts and logs a refusal. `closeCode` is the code sent after 101, or 0 when the refusal
   * was answered with a plain HTTP status.
   */
  report(refusal: Refusal, transport: "websocket" | "http", closeCode: number, request: AdmissionRequest): void;
}

let anonymous = 0;
/** The scopes of the default anonymous principal, shared by all of them. */
const ALL_SCOPES: readonly string[] = Object.freeze(["*"]);

/** Checks the options (the platform's own with them) and makes the endpoint's core. */
export function createEndpoint<O extends EndpointOptions>(options: O, platform: PlatformOptions<O>): Endpoint {
  checkEndpointOptions(options, platform);
  const path = options.path ?? "/protocast";
  const authenticateHook = options.authenticate;
  // By default a refreshed credential is checked by the same hook as the first one.
  const reauthenticate =
    options.reauthenticate ??
    (authenticateHook === undefined
      ? undefined
      : (token: string) => authenticateHook({ headers: { authorization: `Bearer ${token}` }, url: path, origin: undefined, token, remoteAddress: "" }));
  const core = new ServerCore(reauthenticate === undefined ? options : { ...options, reauthenticate });
  const log = options.logger;
  if (log !== undefined) core.logger = log;
  if (options.observer !== undefined) core.observer = options.observer;
  const admission: AdmissionOptions = {
    authenticate: options.authenticate ?? (() => ({ id: `anonymous-${++anonymous}`, scopes: ALL_SCOPES, anonymous: true }) satisfies Principal),
    allowedOrigins: options.allowedOrigins,
    allowQueryToken: options.allowQueryToken ?? false,
    timeoutMs: core.limits.handshakeTimeoutMs,
  };
  const transports = options.transports ?? ["websocket", "http"];
  const maxHeaders = options.maxHeaders ?? 100;
  const logRefusal = log ?? defaultRefusalLog();
  return {
    core,
    path,
    transports,
    decide: (request) => decideUpgrade(request, { path, maxHeaders, websocket: transports.includes("websocket"), closing: core.isClosing }),
    admit: (request, offered) => admit(request, offered, admission),
    report(r, transport, closeCode, request) {
      const auth = r.admission;
      if (auth) core.counters.authFailures++;
      else bump(core.counters.limitHits, "upgrade_refused");
      logRefusal({
        event: auth ? "auth_failure" : "upgrade_refused",
        transport,
        status: r.status,
        closeCode,
        reason: r.reason,
        message: r.message,
        remoteAddress: request.remoteAddress,
        path: new URL(request.url, "http://localhost").pathname,
      });
    },
  };
}
