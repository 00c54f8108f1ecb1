import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { CloseCode } from "../../errors/close-codes.js";
import type { ServerCounters, ServerObserver } from "../../server/counters.js";
import type { ServerStats } from "../../server/server-api.js";
import type { ProtocastServer } from "../node/node-server.js";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";

/*
 * Prometheus metrics of Protocast servers, with prom-client. Every value except the call
 * latency is read from server.stats() when the registry is scraped: the server only bumps
 * plain numbers on its hot path, and nothing here runs per message.
 *
 * Metrics (names shown with the default prefix "protocast_"):
 *
 *   protocast_connections                       gauge    open WebSocket connections
 *   protocast_sessions                          gauge    sessions attached or in their grace period
 *   protocast_channels                          gauge    channels with members on this node
 *   protocast_acks_pending                      gauge    sequenced frames sent and not yet acknowledged
 *   protocast_idempotency_records               gauge    idempotency records held, all principals
 *   protocast_messages_in_total                 counter  envelopes received
 *   protocast_messages_out_total                counter  envelopes sent
 *   protocast_bytes_in_total                    counter  envelope bytes received
 *   protocast_bytes_out_total                   counter  envelope bytes sent
 *   protocast_retransmits_total                 counter  frames sent again after a resume
 *   protocast_dedupe_hits_total                 counter  exactly-once requests answered from the window
 *   protocast_resumes_total                     counter  sessions continued on a new connection
 *   protocast_cluster_nodes                     gauge    other live nodes on the same broker
 *   protocast_sessions_adopted_total            counter  sessions handed over here by another node
 *   protocast_sessions_handed_over_total        counter  sessions handed to another node
 *   protocast_sessions_restored_total           counter  sessions of a dead node continued here from the store
 *   protocast_resume_failures_total{reason}     counter  resumes that got a new session
 *   protocast_drops_total{policy}               counter  channel frames not delivered, by overflow policy
 *   protocast_closes_total{code}                counter  connections closed, by close code
 *   protocast_limit_hits_total{limit}           counter  requests refused by a limit
 *   protocast_auth_failures_total               counter  attempts refused for origin or credential
 *   protocast_rpc_duration_seconds{method,code} histogram call latency; code is "ok" or an error code name
 *
 * Label values come from the server (method paths it implements, its own limit, policy and
 * reason names), never from free text a client sends, so series stay bounded. Close codes are
 * the exception, since a client picks the code it closes with: codes that neither RFC 6455 nor
 * PROTOCOL.md defines are counted as code="other".
 *
 * Opting in: the metrics endpoint is a request handler that the application routes itself,
 * on its own HTTP server (the one given to createServer, or a separate admin port):
 *
 *   const metrics = createMetrics();
 *   const http = createHttpServer((req, res) => {
 *     if (req.url === "/metrics") return metrics.handler(req, res);
 *     res.writeHead(404).end();
 *   });
 *   const server = createServer({ http, observer: metrics.observer });
 *   metrics.attach(server);
 *   http.listen(8080);
 */

export interface MetricsOptions {
  /** Registry to register the metrics in. Default: a new Registry of its own. */
  readonly registry?: Registry;
  /** Prefix of every metric name. Default "protocast_". */
  readonly prefix?: string;
  /** Buckets of the call latency histogram, in seconds. Default 0.5 ms to 60 s (the longest call timeout). */
  readonly rpcBuckets?: readonly number[];
}

export interface ProtocastMetrics {
  readonly registry: Registry;
  /** Pass as createServer's `observer` option: it feeds the latency histogram. */
  readonly observer: ServerObserver;
  /** Reads this server's stats at every scrape; attaching several servers sums them. */
  attach(server: ProtocastServer): void;
  /** Serves the registry in the Prometheus text format (GET or HEAD). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Close codes worth a series of their own: RFC 6455's and Protocast's (PROTOCOL.md 11.3). */
const KNOWN_CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005, 1008, 1010, 1012, 1013, 1014, 1015]);

const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type LabelledCounter = "resumeFailures" | "drops" | "closeCodes" | "limitHits" | "stateViolations";
type PlainCounter = Exclude<keyof ServerCounters, LabelledCounter>;

const OPTION_KEYS = optionKeys<MetricsOptions>()("registry", "prefix", "rpcBuckets");

export function createMetrics(options: MetricsOptions = {}): ProtocastMetrics {
  rejectUnknownOptions("createMetrics", options, OPTION_KEYS);
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? "protocast_";
  const servers: ProtocastServer[] = [];

  // One snapshot per scrape: stats() walks sessions and channels, so it should not run once
  // per metric. prom-client collects every metric of a scrape in the same turn.
  let snapshot: ServerStats[] | undefined;
  const read = (): ServerStats[] => {
    if (snapshot === undefined) {
      snapshot = servers.map((s) => s.stats());
      setImmediate(() => (snapshot = undefined));
    }
    return snapshot;
  };
  const sum = (pick: (s: ServerStats) => number): number => read().reduce((n, s) => n + pick(s), 0);

  const gauge = (name: string, help: string, pick: (s: ServerStats) => number): void => {
    new Gauge({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        this.set(sum(pick));
      },
    });
  };
  const counter = (name: string, help: string, key: PlainCounter): void => {
    new Counter({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        // A running total is the counter's value: reset, then add it back.
        this.reset();
        this.inc(sum((s) => s.counters[key]));
      },
    });
  };
  const labelled = (name: string, help: string, label: string, key: LabelledCounter): void => {
    new Counter({
      name: prefix + name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const totals = new Map<string, number>();
        for (const s of read()) {
          for (const [k, v] of Object.entries(s.counters[key])) {
            const labelValue = key === "closeCodes" && !KNOWN_CLOSE_CODES.has(Number(k)) ? "other" : k;
            totals.set(labelValue, (totals.get(labelValue) ?? 0) + v);
          }
        }
        this.reset();
        for (const [k, v] of totals) this.inc({ [label]: k }, v);
      },
    });
  };

  gauge("connections", "Open WebSocket connections.", (s) => s.connections);
  gauge("sessions", "Sessions attached or in their grace period.", (s) => s.sessions);
  gauge("channels", "Channels with members on this node.", (s) => s.channels);
  gauge("acks_pending", "Sequenced frames sent and not yet acknowledged.", (s) => s.acksPending);
  gauge("idempotency_records", "Idempotency records held, all principals together.", (s) => s.idempotencyRecords);
  gauge("cluster_nodes", "Other live nodes sharing this node's broker.", (s) => s.clusterNodes);
  counter("messages_in_total", "Envelopes received.", "messagesIn");
  counter("messages_out_total", "Envelopes sent.", "messagesOut");
  counter("bytes_in_total", "Envelope bytes received.", "bytesIn");
  counter("bytes_out_total", "Envelope bytes sent.", "bytesOut");
  counter("retransmits_total", "Frames sent again after a resume.", "retransmits");
  counter("dedupe_hits_total", "Exactly-once requests answered from the idempotency window.", "dedupeHits");
  counter("resumes_total", "Sessions continued on a new connection.", "resumes");
  counter("sessions_adopted_total", "Sessions handed over to this node by another one.", "sessionsAdopted");
  counter("sessions_handed_over_total", "Sessions this node handed to another one.", "sessionsHandedOver");
  counter("sessions_restored_total", "Sessions of a dead node continued here from the session store.", "sessionsRestored");
  counter("auth_failures_total", "Connection attempts refused for their origin or credential (before any session).", "authFailures");
  labelled("resume_failures_total", "Resume attempts that got a new session, by reason.", "reason", "resumeFailures");
  labelled("drops_total", "Channel frames not delivered to a slow subscriber, by overflow policy.", "policy", "drops");
  labelled("closes_total", "Connections closed, by close code.", "code", "closeCodes");
  labelled("limit_hits_total", "Requests refused by a limit, by limit name.", "limit", "limitHits");
  labelled("state_violations_total", "Session state changes outside the protocol's table (a bug; normally absent), by from->to.", "transition", "stateViolations");

  const rpc = new Histogram({
    name: `${prefix}rpc_duration_seconds`,
    help: "Time from a call's arrival to its reply or error, by method and outcome.",
    labelNames: ["method", "code"],
    buckets: [...(options.rpcBuckets ?? DEFAULT_BUCKETS)],
    registers: [registry],
  });

  return {
    registry,
    observer: {
      callFinished(method, code, durationMs) {
        rpc.observe({ method, code }, durationMs / 1000);
      },
    },
    attach(server) {
      if (!servers.includes(server)) servers.push(server);
    },
    handler(req, res) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("use GET\n");
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(req.method === "HEAD" ? undefined : text);
        },
        () => {
          res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
        },
      );
    },
  };
}
