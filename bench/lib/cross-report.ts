/**
 * Results of the cross-node scenario: its own peers, so its own entries (results.json
 * "cross_node") and its own small table; ÷ columns are each Protocast variant's median over
 * socketio-redis's, as in the main table.
 */
import { CROSS_BASELINE, CROSS_NODE_4_ID, CROSS_NODE_ID as ID, CROSS_PEERS, type CrossPeer } from "./cross-node.js";
import { cell, ratio, round } from "./report.js";
import { spread, type Spread } from "./stats.js";

export interface CrossSample {
  readonly metric: string;
  readonly peer: CrossPeer;
  readonly value: number;
}

interface CrossMetric {
  readonly name: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

/** The metrics of one cross-node scenario: its primary (named by the id) and its secondary ones. */
function metricsOf(id: string): { primary: CrossMetric; secondary: CrossMetric[] } {
  const secondary: CrossMetric[] = [
    { name: `${id}:latency-p50-ms`, unit: "ms", higherIsBetter: false },
    { name: `${id}:latency-p99-ms`, unit: "ms", higherIsBetter: false },
  ];
  if (id === CROSS_NODE_4_ID) {
    secondary.push(
      { name: `${id}:publishes-per-s`, unit: "publishes/s", higherIsBetter: true },
      { name: `${id}:nodes-cpu-us-per-delivery`, unit: "µs", higherIsBetter: false },
      { name: `${id}:broker-cpu-us-per-publish`, unit: "µs", higherIsBetter: false },
    );
  }
  return { primary: { name: id, unit: "deliveries/s", higherIsBetter: true }, secondary };
}

export interface CrossEntry {
  readonly name: string;
  readonly unit: string;
  readonly higher_is_better: boolean;
  /** The peers of the scenario (cross-node-4 has no protocast-single). */
  readonly peers: Readonly<Partial<Record<CrossPeer, Spread>>>;
  /** Each Protocast variant's median ÷ socketio-redis's. */
  readonly ratio_vs_socketio_redis: Readonly<Partial<Record<CrossPeer, number>>>;
  readonly secondary?: CrossEntry[];
}

/** Samples of one cross-node scenario (`id`, run with `peers`) across rounds. */
export class CrossSamples {
  private readonly byMetric = new Map<string, Record<CrossPeer, number[]>>();

  constructor(
    private readonly id: string = ID,
    private readonly peers: readonly CrossPeer[] = CROSS_PEERS,
  ) {}

  add(samples: readonly CrossSample[]): void {
    for (const s of samples) {
      if (!Number.isFinite(s.value)) throw new Error(`${s.metric} of ${s.peer} is not a number: ${s.value}`);
      let row = this.byMetric.get(s.metric);
      if (row === undefined) this.byMetric.set(s.metric, (row = { "protocast-redis": [], "protocast-nats": [], "protocast-single": [], "socketio-redis": [] }));
      row[s.peer].push(s.value);
    }
  }

  private entry(m: CrossMetric): CrossEntry | undefined {
    const row = this.byMetric.get(m.name);
    if (row === undefined || this.peers.some((p) => row[p].length === 0)) return undefined;
    const peers = Object.fromEntries(this.peers.map((p) => [p, round(spread(row[p]))])) as Record<CrossPeer, Spread>;
    const base = peers[CROSS_BASELINE].median;
    const ratios = Object.fromEntries(this.peers.filter((p) => p !== CROSS_BASELINE).map((p) => [p, ratio(peers[p].median, base)]));
    return {
      name: m.name.startsWith(`${this.id}:`) ? m.name.slice(this.id.length + 1) : m.name,
      unit: m.unit,
      higher_is_better: m.higherIsBetter,
      peers,
      ratio_vs_socketio_redis: ratios,
    };
  }

  /** The entries for results.json; empty when the scenario did not run. */
  entries(): CrossEntry[] {
    const { primary, secondary: wanted } = metricsOf(this.id);
    const main = this.entry(primary);
    if (main === undefined) return [];
    const secondary = wanted.map((m) => this.entry(m)).filter((e): e is CrossEntry => e !== undefined);
    return [secondary.length > 0 ? { ...main, secondary } : main];
  }
}

const SHORT: Readonly<Record<CrossPeer, string>> = {
  "protocast-redis": "redis",
  "protocast-nats": "nats",
  "protocast-single": "single",
  "socketio-redis": "sio",
};

/** Fixed-width table: median (min–max) per peer that ran, then ÷socketio-redis per Protocast variant. */
export function crossTable(entries: readonly CrossEntry[]): string {
  const peers = CROSS_PEERS.filter((p) => entries.some((e) => e.peers[p] !== undefined));
  const variants = peers.filter((p) => p !== CROSS_BASELINE);
  const rows: string[][] = [["scenario", "unit", ...peers, ...variants.map((p) => `${SHORT[p]}÷sio`)]];
  const add = (label: string, e: CrossEntry): void => {
    const ratioOf = (p: CrossPeer): string => {
      const r = e.ratio_vs_socketio_redis[p];
      return r === undefined ? "—" : r.toFixed(2);
    };
    rows.push([label, e.unit, ...peers.map((p) => {
      const s = e.peers[p];
      return s === undefined ? "—" : cell(s);
    }), ...variants.map(ratioOf)]);
  };
  for (const e of entries) {
    add(e.name, e);
    for (const s of e.secondary ?? []) add(`  ${s.name}`, s);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const header = line(rows[0]!);
  return [header, "-".repeat(header.length), ...rows.slice(1).map(line)].join("\n");
}
