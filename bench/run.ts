/**
 * Protocast benchmark harness: every scenario for Protocast, raw ws and Socket.IO in the same
 * run, servers and clients in separate processes, several rounds. Prints a table and writes
 * bench/results/latest.json (see bench/README.md for what each number means).
 *
 *   npm run bench                      full run, 5 rounds (~17 minutes on an idle machine)
 *   npm run bench -- --quick           smaller counts, 2 rounds (under 3 minutes)
 *   npm run bench -- --smoke           tiny, to prove the harness works; numbers mean nothing
 *   options: --rounds N  --only broadcast-1000,rpc,cross-node-1000,...  --out FILE  --no-pin
 *            (idle-18k and cross-node-4 run in full runs, and otherwise only when --only names them)
 *            --session-store redis (Protocast's servers keep sessions in Redis)
 *            --profile[=all]  (CPU profiles of the Protocast [or every] server process)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildWorkers } from "./lib/build.js";
import { CROSS_4_PEERS, CROSS_NODE_4_ID, CROSS_NODE_ID } from "./lib/cross-node.js";
import { CrossSamples, crossTable } from "./lib/cross-report.js";
import { loadAverage, machineName, openFileLimit, placement } from "./lib/machine.js";
import { PEERS, type Peer } from "./lib/messages.js";
import { plans, type Mode, type Plan } from "./lib/plan.js";
import { scalePlans, scaleSockets } from "./lib/plan-scale.js";
import { Samples, scenarioEntries, table, type Results } from "./lib/report.js";
import { broadcastScenario } from "./scenarios/broadcast.js";
import { bundleSize } from "./scenarios/bundle-size.js";
import { codec, payloadCodec } from "./scenarios/codec.js";
import { brokersDown, crossNode4Round, crossNodeRound } from "./scenarios/cross-node.js";
import type { RunContext, Scenario } from "./scenarios/context.js";
import { idleMemory } from "./scenarios/idle-memory.js";
import { idleScale } from "./scenarios/idle-scale.js";
import { rpc } from "./scenarios/rpc.js";

const benchDir = dirname(fileURLToPath(import.meta.url));

interface Options {
  readonly mode: Mode;
  readonly rounds: number | undefined;
  readonly only: readonly string[] | undefined;
  readonly out: string | undefined;
  readonly pin: boolean;
  readonly profile: readonly Peer[];
  readonly sessionStore: "redis" | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  let mode: Mode = "full";
  let rounds: number | undefined;
  let only: string[] | undefined;
  let out: string | undefined;
  let pin = true;
  let profile: Peer[] = [];
  let sessionStore: "redis" | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") mode = "quick";
    else if (a === "--smoke") mode = "smoke";
    else if (a === "--rounds") rounds = Number.parseInt(value(), 10);
    else if (a === "--only") only = value().split(",");
    else if (a === "--out") out = value();
    else if (a === "--no-pin") pin = false;
    else if (a === "--profile") profile = ["protocast"];
    else if (a === "--profile=all") profile = [...PEERS];
    else if (a === "--session-store") {
      const v = value();
      if (v !== "redis") throw new Error(`--session-store takes "redis", got ${v}`);
      sessionStore = v;
    }
    else throw new Error(`unknown option ${a}; see the top of bench/run.ts`);
  }
  if (rounds !== undefined && !(rounds >= 1 && rounds <= 50)) throw new Error("--rounds must be between 1 and 50");
  return { mode, rounds, only, out, pin, profile, sessionStore };
}

const scenarios: readonly Scenario[] = [
  broadcastScenario("broadcast-1000", (ctx) => ctx.plan.broadcast1000, false),
  broadcastScenario("broadcast-5000", (ctx) => ctx.plan.broadcast5000, false),
  broadcastScenario("broadcast-1000-reliable", (ctx) => ctx.plan.reliable1000, true),
  broadcastScenario("broadcast-1000-deflate", (ctx) => ctx.plan.deflate1000, false, true),
  rpc,
  idleMemory,
  idleScale,
  codec,
  payloadCodec,
  bundleSize,
];

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function runOnce(s: Scenario, peer: Peer, ctx: RunContext, samples: Samples): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    try {
      const got = await s.run(peer, ctx);
      samples.add(got);
      const main = got.find((g) => !g.metric.includes(":") && g.peer === peer) ?? got[0];
      log(`  ${s.id} ${"allPeersAtOnce" in s ? "(all)" : peer}: ${main === undefined ? "" : main.value.toFixed(1)} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
      return;
    } catch (e) {
      log(`  ${s.id} ${peer}: attempt ${attempt} failed: ${e instanceof Error ? e.message : String(e)}`);
      if (attempt >= 2) throw e;
    }
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const plan: Plan = { ...plans[options.mode], ...(options.rounds !== undefined ? { rounds: options.rounds } : {}) };
  const selected = scenarios.filter((s) => (options.only === undefined ? !("fullOnly" in s) || plan.mode === "full" : options.only.includes(s.id)));
  // Cross-node has peers of its own, so it runs outside the Scenario list (scenarios/cross-node.ts).
  let crossNode = options.only === undefined || options.only.includes(CROSS_NODE_ID);
  // cross-node-4, like idle-18k, runs in full runs and when --only names it.
  let crossNode4 = options.only === undefined ? plan.mode === "full" : options.only.includes(CROSS_NODE_4_ID);
  if (selected.length === 0 && !crossNode && !crossNode4) {
    throw new Error(`--only matched nothing; scenarios: ${[...scenarios.map((s) => s.id), CROSS_NODE_ID, CROSS_NODE_4_ID].join(", ")}`);
  }
  const down = crossNode || crossNode4 ? await brokersDown() : undefined;
  if (down !== undefined) {
    // As the broker tests do: skipped on a machine without the engines, unless asked for by
    // name or in CI.
    if (options.only !== undefined || process.env["CI"] === "true") throw new Error(`${CROSS_NODE_ID} and ${CROSS_NODE_4_ID} need Redis and NATS: ${down}`);
    log(`${CROSS_NODE_ID} and ${CROSS_NODE_4_ID} skipped: ${down}`);
    crossNode = false;
    crossNode4 = false;
  }

  const needFiles = Math.max(plan.idle.clients, plan.broadcast5000.clients, plan.broadcast1000.clients, plan.crossNode.clients, ...scaleSockets(plan.mode, [...selected.map((s) => s.id), ...(crossNode4 ? [CROSS_NODE_4_ID] : [])])) + 256;
  const limit = openFileLimit();
  if (limit !== undefined && limit < needFiles) {
    throw new Error(`open-file limit is ${limit}; this mode needs ${needFiles} per process. Raise it first: ulimit -n ${needFiles}`);
  }

  await buildWorkers();
  const place = placement(options.pin);
  const profileDir = resolve(benchDir, "results/profiles");
  if (options.profile.length > 0) mkdirSync(profileDir, { recursive: true });
  const loadBefore = loadAverage();
  const started = new Date();
  log(`protocast bench, ${plan.mode} mode, ${plan.rounds} round(s); ${place.description}; load average ${loadBefore.join(" ")}`);

  const samples = new Samples();
  const crossSamples = new CrossSamples();
  const cross4Samples = new CrossSamples(CROSS_NODE_4_ID, CROSS_4_PEERS);
  for (let round = 1; round <= plan.rounds; round++) {
    log(`round ${round}/${plan.rounds}`);
    // Rotating the peer order each round keeps any drift of the machine from favouring one.
    const order = PEERS.map((_, i) => PEERS[(i + round - 1) % PEERS.length]!);
    const ctx: RunContext = {
      plan,
      placement: place,
      profile: options.profile.length > 0 ? { peers: options.profile, dir: profileDir } : undefined,
      sessionStore: options.sessionStore,
      round,
      log,
    };
    for (const s of selected) {
      if ("allPeersAtOnce" in s) await runOnce(s, "protocast", ctx, samples);
      else for (const peer of order) await runOnce(s, peer, ctx, samples);
    }
    if (crossNode) await crossNodeRound(ctx, crossSamples);
    if (crossNode4) await crossNode4Round(ctx, cross4Samples);
  }

  const crossEntries = crossSamples.entries();
  const cross4Entries = cross4Samples.entries();
  const results: Results = {
    machine: machineName(),
    node: process.version,
    rounds: plan.rounds,
    scenarios: scenarioEntries(samples),
    ...(crossEntries.length + cross4Entries.length > 0 ? { cross_node: [...crossEntries, ...cross4Entries] } : {}),
    run: {
      mode: plan.mode,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
      started: started.toISOString(),
      duration_s: Math.round((Date.now() - started.getTime()) / 1000),
      placement: place.description,
      load_average_before: loadBefore,
      load_average_after: loadAverage(),
      plan,
      scale_plan: scalePlans[plan.mode],
      codec_slots: "codec, payload-codec: ws = protobuf-es reflection (toBinary+fromBinary), socketio = JSON.stringify+JSON.parse",
    },
  };
  const out = resolve(options.out ?? resolve(benchDir, plan.mode === "smoke" ? "results/smoke.json" : "results/latest.json"));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\n${results.machine}; Node ${results.node}; ${plan.mode} mode, ${plan.rounds} round(s); ${place.description}\n`);
  process.stdout.write(`median (min–max) over rounds; ÷ = Protocast median / peer median. codec: ws = protobuf-es reflection, socket.io = JSON\n\n`);
  if (results.scenarios.length > 0) process.stdout.write(`${table(results)}\n\n`);
  if (crossEntries.length > 0) {
    const pins = place.taskset ? `; nodes A and B on CPU ${String(place.serverCpu)}, subscribers on CPU ${String(place.clientCpu)}` : "";
    process.stdout.write(`cross-node fan-out (publisher on node A, subscribers on node B${pins}); ÷sio = median / socketio-redis median\n\n`);
    process.stdout.write(`${crossTable(crossEntries)}\n\n`);
  }
  if (cross4Entries.length > 0) {
    const nodes = scalePlans[plan.mode].crossNode4.nodes;
    process.stdout.write(`${CROSS_NODE_4_ID}: ${nodes} server processes on one broker, subscribers on all of them, node 1 publishes; ÷sio = median / socketio-redis median\n\n`);
    process.stdout.write(`${crossTable(cross4Entries)}\n\n`);
  }
  process.stdout.write(`wrote ${out}\n`);
}

main().catch((e: unknown) => {
  log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
