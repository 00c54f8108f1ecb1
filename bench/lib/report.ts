import type { CrossEntry } from "./cross-report.js";
import { PEERS, type Peer } from "./messages.js";
import { spread, type Spread } from "./stats.js";

/** Names of bench/results/latest.json's scenarios, in the order they are reported. */
export const SCENARIO_NAMES = [
  "broadcast-1000",
  "broadcast-5000",
  "broadcast-1000-reliable",
  "broadcast-1000-deflate",
  "rpc-sequential-p50",
  "rpc-sequential-p99",
  "rpc-pipelined",
  "idle-memory-per-conn",
  "idle-18k",
  "codec",
  "payload-codec",
  "browser-bundle",
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface MetricSpec {
  readonly name: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  /** Secondary metrics are reported inside the entry of the scenario they belong to. */
  readonly of?: ScenarioName;
}

const broadcast = (name: ScenarioName): MetricSpec[] => [
  { name, unit: "deliveries/s", higherIsBetter: true },
  { name: `${name}:last-message-ms`, unit: "ms", higherIsBetter: false, of: name },
  { name: `${name}:server-cpu-us-per-delivery`, unit: "µs", higherIsBetter: false, of: name },
];

export const METRICS: readonly MetricSpec[] = [
  ...broadcast("broadcast-1000"),
  ...broadcast("broadcast-5000"),
  ...broadcast("broadcast-1000-reliable"),
  ...broadcast("broadcast-1000-deflate"),
  { name: "broadcast-1000-deflate:bytes-per-delivery", unit: "bytes read", higherIsBetter: false, of: "broadcast-1000-deflate" },
  { name: "rpc-sequential-p50", unit: "µs", higherIsBetter: false },
  { name: "rpc-sequential-p99", unit: "µs", higherIsBetter: false },
  { name: "rpc-pipelined", unit: "calls/s", higherIsBetter: true },
  { name: "idle-memory-per-conn", unit: "bytes RSS", higherIsBetter: false },
  { name: "idle-memory-per-conn:heap", unit: "bytes heap", higherIsBetter: false, of: "idle-memory-per-conn" },
  { name: "idle-18k", unit: "bytes RSS", higherIsBetter: false },
  { name: "idle-18k:rss-total", unit: "bytes RSS", higherIsBetter: false, of: "idle-18k" },
  { name: "idle-18k:upper-half-slope", unit: "bytes RSS", higherIsBetter: false, of: "idle-18k" },
  { name: "idle-18k:heap", unit: "bytes heap", higherIsBetter: false, of: "idle-18k" },
  { name: "codec", unit: "ops/s", higherIsBetter: true },
  { name: "payload-codec", unit: "ops/s", higherIsBetter: true },
  { name: "browser-bundle", unit: "bytes minified", higherIsBetter: false },
  { name: "browser-bundle:gzip", unit: "bytes gzip", higherIsBetter: false, of: "browser-bundle" },
];

export interface Sample {
  readonly metric: string;
  readonly peer: Peer;
  readonly value: number;
}

/** Samples of every metric and peer across rounds. */
export class Samples {
  private readonly byMetric = new Map<string, Record<Peer, number[]>>();

  add(samples: readonly Sample[]): void {
    for (const s of samples) {
      if (!Number.isFinite(s.value)) throw new Error(`${s.metric} of ${s.peer} is not a number: ${s.value}`);
      let row = this.byMetric.get(s.metric);
      if (row === undefined) this.byMetric.set(s.metric, (row = { protocast: [], ws: [], socketio: [] }));
      row[s.peer].push(s.value);
    }
  }

  entry(spec: MetricSpec): Entry | undefined {
    const row = this.byMetric.get(spec.name);
    if (row === undefined || PEERS.some((p) => row[p].length === 0)) return undefined;
    const [protocast, ws, socketio] = PEERS.map((p) => round(spread(row[p])));
    return {
      name: spec.of === undefined ? spec.name : spec.name.slice(spec.of.length + 1),
      unit: spec.unit,
      higher_is_better: spec.higherIsBetter,
      protocast: protocast!,
      ws: ws!,
      socketio: socketio!,
      ratio_vs_ws: ratio(protocast!.median, ws!.median),
      ratio_vs_socketio: ratio(protocast!.median, socketio!.median),
    };
  }
}

export interface Entry {
  readonly name: string;
  readonly unit: string;
  readonly higher_is_better: boolean;
  readonly protocast: Spread;
  readonly ws: Spread;
  readonly socketio: Spread;
  readonly ratio_vs_ws: number;
  readonly ratio_vs_socketio: number;
}

export interface ScenarioEntry extends Entry {
  /** Further measurements of the same runs (e.g. last-message latency, server CPU). */
  readonly secondary?: Entry[];
}

export interface Results {
  readonly machine: string;
  readonly node: string;
  readonly rounds: number;
  readonly scenarios: ScenarioEntry[];
  /** The cross-node scenario, whose peers differ from the others' (see cross-report.ts). */
  readonly cross_node?: CrossEntry[];
  /** Not part of the shape other tools rely on: how the numbers were made. */
  readonly run: Readonly<Record<string, unknown>>;
}

export function round(s: Spread): Spread {
  return { median: sig(s.median), min: sig(s.min), max: sig(s.max) };
}

/** Four significant digits: the rounds disagree well before the fifth. */
function sig(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(4));
}

export function ratio(a: number, b: number): number {
  return b === 0 ? 0 : Number((a / b).toFixed(3));
}

export function scenarioEntries(samples: Samples): ScenarioEntry[] {
  const out: ScenarioEntry[] = [];
  for (const name of SCENARIO_NAMES) {
    const spec = METRICS.find((m) => m.name === name)!;
    const entry = samples.entry(spec);
    if (entry === undefined) continue;
    const secondary = METRICS.filter((m) => m.of === name)
      .map((m) => samples.entry(m))
      .filter((e): e is Entry => e !== undefined);
    out.push(secondary.length > 0 ? { ...entry, secondary } : entry);
  }
  return out;
}

function human(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 1 : 2)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export const cell = (s: Spread): string => `${human(s.median)} (${human(s.min)}–${human(s.max)})`;

/** The results as a fixed-width table: median (min–max) per peer, then the ratios. */
export function table(results: Results): string {
  const rows: string[][] = [["scenario", "unit", "protocast", "ws", "socket.io", "÷ws", "÷sio"]];
  const add = (label: string, e: Entry): void => {
    rows.push([label, e.unit, cell(e.protocast), cell(e.ws), cell(e.socketio), e.ratio_vs_ws.toFixed(2), e.ratio_vs_socketio.toFixed(2)]);
  };
  for (const s of results.scenarios) {
    add(s.name, s);
    for (const e of s.secondary ?? []) add(`  ${e.name}`, e);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const header = line(rows[0]!);
  return [header, "-".repeat(header.length), ...rows.slice(1).map(line)].join("\n");
}
