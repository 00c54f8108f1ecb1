/**
 * Prints the capacity plan of README.md ("Capacity plan") from benchmark results, so that it can
 * be made again after any run:
 *
 *   npx tsx bench/tools/capacity.ts [options] bench/results/latest.json [more results files]
 *
 * options: --connections N (1,000,000)  --deliveries N per second (1,000,000)
 *          --audience N,N,... subscribers per channel (1000,10)
 *          --per-process N,N,... connections per server process (18000,50000)
 *
 * Later files win for a number that several files hold. Measured numbers are the medians of
 * the files (Protocast's column); every other number is derived from them by the arithmetic
 * printed next to it. Markdown on stdout.
 */
import { readFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";

interface Spread {
  readonly median: number;
}
interface Entry {
  readonly name: string;
  readonly protocast?: Spread;
  readonly peers?: Readonly<Record<string, Spread>>;
  readonly secondary?: readonly Entry[];
}
interface ResultsFile {
  readonly machine: string;
  readonly node: string;
  readonly rounds: number;
  readonly scenarios?: readonly Entry[];
  readonly cross_node?: readonly Entry[];
  readonly run?: { readonly mode?: string; readonly started?: string; readonly load_average_before?: readonly number[]; readonly scale_plan?: { readonly idle18k?: { readonly clients: number }; readonly crossNode4?: { readonly nodes: number } } };
}

function parse(argv: readonly string[]): { files: string[]; connections: number; deliveries: number; audiences: number[]; perProcess: number[] } {
  const o = { files: [] as string[], connections: 1_000_000, deliveries: 1_000_000, audiences: [1000, 10], perProcess: [18_000, 50_000] };
  const list = (v: string | undefined): number[] => (v ?? "").split(",").map((x) => Number(x.replace(/_/g, "")));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--connections") o.connections = Number(argv[++i]);
    else if (a === "--deliveries") o.deliveries = Number(argv[++i]);
    else if (a === "--audience") o.audiences = list(argv[++i]);
    else if (a === "--per-process") o.perProcess = list(argv[++i]);
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}; see the top of bench/tools/capacity.ts`);
    else o.files.push(a);
  }
  const numbers = [o.connections, o.deliveries, ...o.audiences, ...o.perProcess];
  if (o.files.length === 0 || numbers.some((n) => !(n > 0))) throw new Error("usage: capacity.ts [options] results.json [more.json]");
  return o;
}

/** Every measured median by "scenario[:secondary]/peer", later files overriding earlier ones. */
function medians(files: readonly ResultsFile[]): Map<string, number> {
  const out = new Map<string, number>();
  const add = (prefix: string, e: Entry): void => {
    if (e.protocast !== undefined) out.set(`${prefix}/protocast`, e.protocast.median);
    for (const [peer, s] of Object.entries(e.peers ?? {})) out.set(`${prefix}/${peer}`, s.median);
  };
  for (const f of files) {
    for (const e of [...(f.scenarios ?? []), ...(f.cross_node ?? [])]) {
      add(e.name, e);
      for (const s of e.secondary ?? []) add(`${e.name}:${s.name}`, s);
    }
  }
  return out;
}

const int = (v: number): string => Math.round(v).toLocaleString("en-US");
const k = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : int(v));
const mib = (bytes: number): string => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

function main(): void {
  const o = parse(process.argv.slice(2));
  const files = o.files.map((f) => JSON.parse(readFileSync(f, "utf8")) as ResultsFile);
  const m = medians(files);
  const need = (key: string): number => {
    const v = m.get(key);
    if (v === undefined || !(v > 0)) throw new Error(`no ${key} in ${o.files.join(", ")}; run the bench with that scenario first`);
    return v;
  };
  const out: string[] = [];
  const say = (line = ""): void => void out.push(line);

  // Measured.
  const slope = need("idle-18k/protocast");
  const heapSlope = need("idle-18k:heap/protocast");
  const rssTotal = need("idle-18k:rss-total/protocast");
  const upper = need("idle-18k:upper-half-slope/protocast");
  const idleCount = files.map((f) => f.run?.scale_plan?.idle18k?.clients).find((n) => n !== undefined) ?? 18_000;
  const nodes4 = files.map((f) => f.run?.scale_plan?.crossNode4?.nodes).find((n) => n !== undefined) ?? 4;
  const broadcast = m.get("broadcast-1000/protocast");
  const brokers = [
    { name: "Redis", peer: "protocast-redis" },
    { name: "NATS", peer: "protocast-nats" },
  ].map((b) => ({
    ...b,
    perProcess: need(`cross-node-1000/${b.peer}`),
    four: need(`cross-node-4/${b.peer}`),
    nodesCpu: need(`cross-node-4:nodes-cpu-us-per-delivery/${b.peer}`),
    brokerCpu: m.get(`cross-node-4:broker-cpu-us-per-publish/${b.peer}`),
    publishes: need(`cross-node-4:publishes-per-s/${b.peer}`),
  }));
  const base = rssTotal - slope * idleCount;

  say(`Figures from ${o.files.join(", ")}: ${files.map((f) => `${f.run?.mode ?? "?"} run, ${f.rounds} round(s), ${f.run?.started ?? "?"}, load average before ${(f.run?.load_average_before ?? []).join(" ")}`).join("; ")}; ${files[0]!.machine}, Node ${files[0]!.node}.`);
  say();
  say("Measured (Protocast's median):");
  say();
  say("| figure | value | from |");
  say("|---|---|---|");
  say(`| server RSS per idle authenticated connection | ${int(slope)} B | idle-18k, slope from the baseline to ${int(idleCount)} |`);
  say(`| the same over the upper half only | ${int(upper)} B | idle-18k:upper-half-slope |`);
  say(`| heap per idle connection | ${int(heapSlope)} B | idle-18k:heap |`);
  say(`| server RSS holding ${int(idleCount)} connections | ${mib(rssTotal)} | idle-18k:rss-total |`);
  if (broadcast !== undefined) say(`| deliveries/s, one process, embedded broker | ${k(broadcast)} | broadcast-1000 |`);
  for (const b of brokers) {
    say(`| deliveries/s, one subscriber process on ${b.name} | ${k(b.perProcess)} | cross-node-1000 ${b.peer} |`);
    say(`| deliveries/s, ${nodes4} processes on ${b.name} sharing one core | ${k(b.four)} | cross-node-4 |`);
    say(`| CPU of those ${nodes4} processes per delivery | ${b.nodesCpu.toFixed(2)} µs | cross-node-4:nodes-cpu-us-per-delivery |`);
    say(`| publishes/s through ${b.name} in that burst | ${k(b.publishes)} | cross-node-4:publishes-per-s |`);
    if (b.brokerCpu !== undefined) say(`| ${b.name} CPU per publish (1 in, ${nodes4} out) | ${b.brokerCpu.toFixed(1)} µs | cross-node-4:broker-cpu-us-per-publish |`);
  }
  say();

  say("Derived:");
  say();
  say(`Memory, from RSS = ${mib(base)} + ${int(slope)} B × connections (intercept and slope of idle-18k; heap ${int(heapSlope)} B each):`);
  say();
  say("| connections in one process | RSS | heap of the connections | note |");
  say("|---|---|---|---|");
  const heapLimit = getHeapStatistics().heap_size_limit;
  for (const n of [idleCount, 50_000, o.connections]) {
    const note = n === idleCount ? "measured" : heapSlope * n > heapLimit ? `past Node's default heap limit here (${mib(heapLimit)}): needs --max-old-space-size` : "extrapolated";
    say(`| ${int(n)} | ${mib(base + slope * n)} | ${mib(heapSlope * n)} | ${note} |`);
  }
  say();
  say(`Fan-out check: ${nodes4} processes on one core should together deliver about what one process does on that core, less each node's share of reading every publish from the broker:`);
  say();
  say("| broker | one process (cross-node-1000) | four on one core (cross-node-4) | ratio | deliveries per core-second from their CPU time |");
  say("|---|---|---|---|---|");
  for (const b of brokers) say(`| ${b.name} | ${k(b.perProcess)} | ${k(b.four)} | ${(b.four / b.perProcess).toFixed(2)} | ${k(1e6 / b.nodesCpu)} |`);
  say();
  say(`Deployment for ${int(o.connections)} concurrent connections and ${int(o.deliveries)} deliveries/s, one server process per core:`);
  say();
  say("| broker | connections per process | processes for the connections | processes for the deliveries | server processes | their RSS together | runs out first | audience | publishes/s | broker messages/s | broker cores |");
  say("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const b of brokers) {
    const forDeliveries = Math.ceil(o.deliveries / b.perProcess);
    // Each publish is one message into the broker and one out to every node with members.
    const perMessage = b.brokerCpu === undefined ? undefined : b.brokerCpu / (1 + nodes4);
    for (const per of o.perProcess) {
      const forConnections = Math.ceil(o.connections / per);
      const processes = Math.max(forConnections, forDeliveries);
      const servers = forConnections >= forDeliveries ? "connections per process" : "server CPU for deliveries";
      const rss = mib(processes * base + slope * o.connections);
      for (const audience of o.audiences) {
        const publishes = o.deliveries / audience;
        const messages = publishes * (1 + Math.min(processes, audience));
        const brokerCores = perMessage === undefined ? undefined : (messages * perMessage) / 1e6;
        const cores = brokerCores === undefined ? "—" : brokerCores.toFixed(1);
        // One Redis server (Redis runs commands on one core) or one JetStream stream carries
        // every channel of a broker; past one core the broker is what runs out.
        const first = brokerCores !== undefined && brokerCores > 1 ? `the broker (${Math.ceil(brokerCores)} cores' worth)` : servers;
        say(`| ${b.name} | ${int(per)} | ${forConnections} | ${forDeliveries} | ${processes} | ${rss} | ${first} | ${int(audience)} | ${k(publishes)} | ${k(messages)} | ${cores} |`);
      }
    }
  }
  say();
  say(
    "Processes for the connections = connections ÷ connections per process; for the deliveries = deliveries/s ÷ one subscriber process's " +
      "deliveries/s on that broker (cross-node-1000). Broker messages/s = publishes/s × (1 + the nodes a channel's members sit on, at most " +
      "the audience); broker cores = that × the broker's CPU per message (its CPU per publish ÷ (1 + " + String(nodes4) + ")). " +
      "Each broker adapter talks to one Redis server or one JetStream stream, so a broker needing more than one core is what runs out first.",
  );
  process.stdout.write(`${out.join("\n")}\n`);
}

main();
