/**
 * Results of the cross-node scenario: its own peers, so its own entries (results.json
 * "cross_node") and its own small table; ÷ columns are each Protocast variant's median over
 * socketio-redis's, as in the main table.
 */
import { CROSS_BASELINE, CROSS_NODE_ID as ID, CROSS_PEERS, type CrossPeer } from "./cross-node.js";
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

const PRIMARY: CrossMetric = { name: ID, unit: "deliveries/s", higherIsBetter: true };
const SECONDARY: readonly CrossMetric[] = [
  { name: `${ID}:latency-p50-ms`, unit: "ms", higherIsBetter: false },
  { name: `${ID}:latency-p99-ms`, unit: "ms", higherIsBetter: false },
];

export interface CrossEntry {
  readonly name: string;
  readonly unit: string;
  readonly higher_is_better: boolean;
  readonly peers: Readonly<Record<CrossPeer, Spread>>;
  /** Each Protocast variant's median ÷ socketio-redis's. */
  readonly ratio_vs_socketio_redis: Readonly<Partial<Record<CrossPeer, number>>>;
  readonly secondary?: CrossEntry[];
}

export class CrossSamples {
  private readonly byMetric = new Map<string, Record<CrossPeer, number[]>>();

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
    if (row === undefined || CROSS_PEERS.some((p) => row[p].length === 0)) return undefined;
    const peers = Object.fromEntries(CROSS_PEERS.map((p) => [p, round(spread(row[p]))])) as Record<CrossPeer, Spread>;
    const base = peers[CROSS_BASELINE].median;
    const ratios = Object.fromEntries(CROSS_PEERS.filter((p) => p !== CROSS_BASELINE).map((p) => [p, ratio(peers[p].median, base)]));
    return {
      name: m.name.startsWith(`${ID}:`) ? m.name.slice(ID.length + 1) : m.name,
      unit: m.unit,
      higher_is_better: m.higherIsBetter,
      peers,
      ratio_vs_socketio_redis: ratios,
    };
  }

  /** The entries for results.json; empty when the scenario did not run. */
  entries(): CrossEntry[] {
    const main = this.entry(PRIMARY);
    if (main === undefined) return [];
    const secondary = SECONDARY.map((m) => this.entry(m)).filter((e): e is CrossEntry => e !== undefined);
    return [secondary.length > 0 ? { ...main, secondary } : main];
  }
}

const SHORT: Readonly<Record<CrossPeer, string>> = {
  "protocast-redis": "redis",
  "protocast-nats": "nats",
  "protocast-single": "single",
  "socketio-redis": "sio",
};

/** Fixed-width table: median (min–max) per peer, then ÷socketio-redis per Protocast variant. */
export function crossTable(entries: readonly CrossEntry[]): string {
  const variants = CROSS_PEERS.filter((p) => p !== CROSS_BASELINE);
  const rows: string[][] = [["scenario", "unit", ...CROSS_PEERS, ...variants.map((p) => `${SHORT[p]}÷sio`)]];
  const add = (label: string, e: CrossEntry): void => {
    rows.push([label, e.unit, ...CROSS_PEERS.map((p) => cell(e.peers[p])), ...variants.map((p) => (e.ratio_vs_socketio_redis[p] ?? 0).toFixed(2))]);
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
