// The conformance server (PROTOCOL.md section 18): the Protocast server with the conformance
// service, test credentials and small limits, so that another implementation can force every
// behaviour of the protocol in seconds. `npm run conformance-server` starts it; PORT and HOST
// choose where (default 127.0.0.1:8090).
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Code, ProtocastError, connect, createClient, createServer, type Connection, type Principal, type ProtocastServer, type ServerLimits } from "protocast/node";
import { ConformanceService } from "../../generated/protocast/conformance/v1/conformance_protocast.js";

/**
 * The limits of the conformance profile. Smaller than the defaults so that each can be reached
 * quickly; PROTOCOL.md 18.1 lists them, and the runner reads them from here.
 */
export const CONFORMANCE_LIMITS = {
  maxEnvelopeBytes: 16_384,
  pingIntervalMs: 2_000,
  pingTimeoutMs: 1_000,
  handshakeTimeoutMs: 2_000,
  graceMs: 4_000,
  maxInflightCalls: 8,
  maxSubscriptionsPerConnection: 16,
  maxConnectionsPerPrincipal: 3,
  retransmitFrames: 200,
  sendHighWaterMark: 65_536,
  rateMessagesPerSecond: 100,
  rateMessagesBurst: 100,
  rateViolationsBeforeClose: 20,
  refreshLeadMs: 1_000,
  maxCallTimeoutMs: 10_000,
} as const satisfies Partial<ServerLimits>;

/**
 * The test credential: `<name>` or `<name>;ttl=<ms>`. The name (1-200 letters, digits, "_" or
 * "-") is the principal id, with the scope "conformance"; a ttl makes the credential expire
 * that long after the server checked it. The name "banned" is refused with 4503; anything else
 * that does not parse, or no credential at all, with 4502.
 */
export const CREDENTIAL = /^([A-Za-z0-9_-]{1,200})(?:;ttl=(\d{1,9}))?$/;

export function authenticateToken(token: string | undefined, now = Date.now()): Principal {
  const m = token === undefined ? null : CREDENTIAL.exec(token);
  if (m === null) throw new ProtocastError(Code.Unauthenticated, 'the credential is "<name>" or "<name>;ttl=<ms>"');
  const name = m[1]!;
  if (name === "banned") throw new ProtocastError(Code.PermissionDenied, "this principal may not connect", { reason: "permission_denied" });
  return { id: name, scopes: ["conformance"], ...(m[2] === undefined ? {} : { expiresAtMs: now + Number(m[2]) }) };
}

export interface RunningConformanceServer {
  /** WebSocket URL of the endpoint, such as "ws://127.0.0.1:8090/protocast". */
  readonly url: string;
  readonly port: number;
  readonly protocast: ProtocastServer;
  close(): Promise<void>;
}

const CHANNELS = {
  reliable: ConformanceService.channels.reliable,
  once: ConformanceService.channels.once,
  newest: ConformanceService.channels.newest,
  oldest: ConformanceService.channels.oldest,
  latest: ConformanceService.channels.latest,
  room: ConformanceService.channels.room,
} as const;

const MAX_DATA = 60_000;
const MAX_COUNT = 100_000;
const MAX_CROWD = 1_000;

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new ProtocastError(Code.Canceled, "aborted"));
    });
  });
}

function bounded(n: number, max: number, what: string): number {
  if (n > max) throw new ProtocastError(Code.InvalidArgument, `${what} is at most ${max}`);
  return n;
}

export async function startConformanceServer(options: { port?: number; host?: string } = {}): Promise<RunningConformanceServer> {
  const host = options.host ?? "127.0.0.1";
  const server = createServer({ ...CONFORMANCE_LIMITS, authenticate: (req) => authenticateToken(req.token), logger: () => {} });
  const counters = new Map<string, number>();
  const ghosts: Connection[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  /** Runs `fn` after `ms` (after the Reply that scheduled it, for 0), unless the server closes first. */
  const later = (ms: number, fn: () => void | Promise<void>): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      void Promise.resolve()
        .then(fn)
        .catch(() => undefined);
    }, ms);
    timers.add(t);
  };
  let url = "";

  server.implement(ConformanceService, {
    async sleep(req, ctx) {
      const started = Date.now();
      await wait(req.durationMs, ctx.signal);
      return { sleptMs: Date.now() - started };
    },
    echo(req) {
      return { data: new Uint8Array(bounded(req.size, 1 << 20, "size")) };
    },
    count(_req, ctx) {
      const value = (counters.get(ctx.principal.id) ?? 0) + 1;
      counters.set(ctx.principal.id, value);
      return { value };
    },
    goaway(req, ctx) {
      later(0, () => {
        server.goaway(ctx.sessionId, { reason: req.reason || "rebalance", reconnectAfterMs: req.reconnectAfterMs, closeInMs: req.closeInMs || 1_000 });
      });
      return {};
    },
    push(req, ctx) {
      const count = bounded(req.count, MAX_COUNT, "count");
      later(req.delayMs, () => {
        for (let n = 1; n <= count; n++) {
          if (req.reliable) server.push(ConformanceService.events.notices, ctx.principal.id, { n });
          else server.push(ConformanceService.events.hints, ctx.principal.id, { n });
        }
      });
      return {};
    },
    publish(req) {
      const def = CHANNELS[req.kind as keyof typeof CHANNELS] as (typeof CHANNELS)["latest"] | undefined;
      if (def === undefined) throw new ProtocastError(Code.InvalidArgument, `kind is one of ${Object.keys(CHANNELS).join(", ")}`);
      const count = bounded(req.count, MAX_COUNT, "count");
      const data = new Uint8Array(bounded(req.size, MAX_DATA, "size"));
      const params = { name: req.name };
      const one = (n: number): Promise<unknown> => server.publish(def, params, { n, data, key: String(req.keys === 0 ? n : n % req.keys) });
      later(0, async () => {
        for (let n = 1; n <= count; n++) {
          if (req.intervalMs > 0 && n > 1) await wait(req.intervalMs);
          await one(n);
        }
      });
      return {};
    },
    async crowd(req) {
      const count = bounded(req.count, MAX_CROWD, "count");
      const pad = Math.max(0, Math.min(req.principalBytes, 200) - 12);
      const joined: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const name = `ghost-${String(ghosts.length).padStart(5, "0")}-${"x".repeat(pad)}`.slice(0, Math.max(12, req.principalBytes));
        const conn = connect(url, { token: name });
        ghosts.push(conn);
        const sub = createClient(ConformanceService, conn).room({ name: req.name });
        joined.push(sub.ready);
      }
      await Promise.all(joined);
      return {};
    },
    ban(_req, ctx) {
      later(0, () => void server.disconnect(ctx.principal.id, { reason: "banned" }));
      return {};
    },
    kick(req, ctx) {
      return { removed: server.kick(ConformanceService.channels.room, { name: req.name }, { principalId: ctx.principal.id }) };
    },
    forbidden() {
      return {};
    },
  });

  const address: AddressInfo = await server.listen(options.port ?? 8090, host);
  const port = address.port;
  url = `ws://${host.includes(":") ? `[${host}]` : host}:${port}/protocast`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    protocast: server,
    close() {
      closing ??= (async () => {
        for (const t of timers) clearTimeout(t);
        await Promise.all(ghosts.map((g) => g.close()));
        await server.close({ deadlineMs: 0 });
      })();
      return closing;
    },
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env["PORT"] ?? 8090);
  const running = await startConformanceServer({ port, host: process.env["HOST"] ?? "127.0.0.1" });
  console.log(`conformance server: ${running.url} (credentials: "<name>" or "<name>;ttl=<ms>"; PROTOCOL.md section 18)`);
  const stop = (): void => void running.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
