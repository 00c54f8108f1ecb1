/**
 * Sends damaged envelopes to a server over many raw connections and tallies every answer.
 *
 * A connection closes at the first violation, so each connection carries a batch in which
 * every damaged envelope is followed by a Ping probe. The server handles frames in order, so
 * a probe's Pong proves that the envelope before it was handled and the connection kept; when
 * the connection closes instead, the envelope after the last answered probe is the one that
 * closed it, and the close code is its answer. Envelopes behind it were never handled: they
 * go back in the queue for another connection. Many connections run side by side.
 */
import { fc } from "@fast-check/vitest";
import { codeName, type Code } from "../../runtime/errors/code.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import { mutationArbitrary, seedEnvelopes, type Mutation, type MutationKind } from "./mutations.js";
import { openSession } from "./raw-session.js";
import { binaryFrame } from "./raw-ws.js";

export interface FuzzOptions {
  readonly port: number;
  readonly total: number;
  /** Connections open at once. */
  readonly parallel: number;
  /** Envelopes sent per connection (those behind a fatal one are sent again elsewhere). */
  readonly batch: number;
  /** Gives up (and reports fewer handled) after this long. */
  readonly deadlineMs: number;
  readonly seed: number;
  readonly maxEnvelopeBytes: number;
  /** Close codes a damaged envelope may get. */
  readonly expectedCloses: ReadonlySet<number>;
}

export interface FuzzReport {
  /** Damaged envelopes the server handled: kept open plus closed. */
  handled: number;
  connections: number;
  elapsedMs: number;
  /** "kept open" and "closed <code>" counts. */
  outcomes: Record<string, number>;
  byMutation: Partial<Record<MutationKind, Record<string, number>>>;
  /** Server envelopes other than probe answers, by kind. */
  serverFrames: Record<string, number>;
  errorCodes: Record<string, number>;
  /** Anything that is not a documented answer; empty when all is well. */
  unexpected: string[];
  rss: { start: number; max: number; end: number };
}

/** Probe Pings carry PROBE + their index in the batch: far from any time a mutation could make. */
const PROBE = 4_000_000_000_000_000;

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

const probes: Buffer[] = [];
function probe(i: number): Buffer {
  return (probes[i] ??= binaryFrame(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "ping", value: { sentAtMs: PROBE + i } } })));
}

/** Each damaged envelope is framed (and masked) once, however often it is sent again. */
const framed = new WeakMap<Mutation, Buffer>();
function frameOf(m: Mutation): Buffer {
  let f = framed.get(m);
  if (f === undefined) framed.set(m, (f = binaryFrame(m.bytes)));
  return f;
}

export async function runEnvelopeFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const arb = mutationArbitrary(seedEnvelopes(o.seed), o.maxEnvelopeBytes);
  let chunk = 0;
  let pool: Mutation[] = [];
  let generated = 0;
  const requeued: Mutation[] = [];
  const take = (): Mutation | undefined => {
    const again = requeued.pop();
    if (again !== undefined) return again;
    if (generated >= o.total) return undefined;
    if (pool.length === 0) pool = fc.sample(arb, { numRuns: 2_000, seed: o.seed + 1 + chunk++ });
    generated++;
    return pool.pop();
  };
  const report: FuzzReport = {
    handled: 0,
    connections: 0,
    elapsedMs: 0,
    outcomes: {},
    byMutation: {},
    serverFrames: {},
    errorCodes: {},
    unexpected: [],
    rss: { start: process.memoryUsage().rss, max: 0, end: 0 },
  };
  const record = (m: Mutation, outcome: string): void => {
    bump(report.outcomes, outcome);
    bump((report.byMutation[m.kind] ??= {}), outcome);
  };

  const runOne = async (batch: Mutation[]): Promise<void> => {
    report.connections++;
    let session;
    try {
      session = await openSession(o.port);
    } catch (e) {
      report.unexpected.push(`open failed: ${String(e)}`);
      requeued.push(...batch);
      return;
    }
    const raw = session.raw;
    let answered = 0;
    session.onEnvelope = (env) => {
      const f = env.frame;
      if (f.case === "pong" && f.value.sentAtMs >= PROBE) {
        answered = f.value.sentAtMs - PROBE + 1;
        if (answered === batch.length) raw.close(1000);
        return;
      }
      bump(report.serverFrames, f.case);
      if (f.case === "error") bump(report.errorCodes, codeName(f.value.code as Code));
    };
    const stall = setTimeout(() => {
      report.unexpected.push(`connection stalled after ${answered} of ${batch.length} envelopes`);
      raw.socket.destroy();
    }, 15_000);
    const parts: Buffer[] = [];
    batch.forEach((m, i) => parts.push(frameOf(m), probe(i)));
    raw.send(Buffer.concat(parts as Uint8Array[]));
    const end = await raw.ended;
    clearTimeout(stall);
    for (let i = 0; i < answered; i++) record(batch[i]!, "kept open");
    report.handled += answered;
    if (answered < batch.length) {
      const killer = batch[answered]!;
      const code = end.code === undefined ? "no close frame" : String(end.code);
      record(killer, `closed ${code}`);
      if (end.code === undefined || !o.expectedCloses.has(end.code)) report.unexpected.push(`${killer.kind} envelope: closed with ${code} (${end.reason})`);
      report.handled++;
      requeued.push(...batch.slice(answered + 1));
    }
  };

  const sampler = setInterval(() => (report.rss.max = Math.max(report.rss.max, process.memoryUsage().rss)), 200);
  const started = Date.now();
  const worker = async (): Promise<void> => {
    while (Date.now() - started < o.deadlineMs && report.unexpected.length < 20) {
      const batch: Mutation[] = [];
      for (let m = take(); m !== undefined; m = batch.length < o.batch ? take() : undefined) batch.push(m);
      if (batch.length === 0) return;
      await runOne(batch);
    }
  };
  await Promise.all(Array.from({ length: o.parallel }, worker));
  clearInterval(sampler);
  report.elapsedMs = Date.now() - started;
  report.rss.end = process.memoryUsage().rss;
  report.rss.max = Math.max(report.rss.max, report.rss.end);
  return report;
}

/** The report as a few lines for the test log. */
export function describeReport(r: FuzzReport): string {
  const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
  return [
    `damaged envelopes handled: ${r.handled} in ${r.elapsedMs} ms over ${r.connections} connections (${(r.handled / r.connections).toFixed(2)} per connection)`,
    `outcomes: ${JSON.stringify(r.outcomes)}`,
    `by mutation: ${JSON.stringify(r.byMutation)}`,
    `server frames besides probe answers: ${JSON.stringify(r.serverFrames)}; error codes: ${JSON.stringify(r.errorCodes)}`,
    `client process RSS MiB: start ${mib(r.rss.start)}, max ${mib(r.rss.max)}, end ${mib(r.rss.end)}`,
  ].join("\n");
}
