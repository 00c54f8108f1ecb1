/**
 * Cross-node fan-out: `clients` subscribers of one channel on node B; node A, another server
 * process sharing a broker with B, publishes. Peers: Protocast on Redis, on NATS, on one node
 * with the embedded broker (baseline, publisher and subscribers on the same node), and
 * Socket.IO with @socket.io/redis-adapter. Per run, after `warmup` unmeasured messages:
 *   latency      = paced phase, one message every intervalMs: arrival at each client − the
 *                  publish stamp in the payload (hrtime µs), p50/p99 over every delivery;
 *   deliveries/s = burst phase, plan.batch per turn: clients × messages ÷ (last event at the
 *                  last client − first publish).
 * cross-node-4 (full runs, or --only): four nodes on one broker (Protocast on Redis, on NATS,
 * Socket.IO with its Redis adapter), the subscribers spread over all four in blocks, node 1
 * publishing; the same phases and numbers, plus publishes/s of the burst, the nodes' CPU per
 * delivery and the broker's CPU per publish (from /proc, when the broker runs on this machine).
 */
import { connect as tcpConnect } from "node:net";
import { Redis } from "ioredis";
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  CROSS_4_PEERS,
  CROSS_NODE_4_ID,
  CROSS_NODE_ID,
  CROSS_PEERS,
  NATS_URL,
  REDIS_URL,
  brokerNames,
  crossDialect,
  type BrokerNames,
  type CrossClientArgs,
  type CrossClientCommand,
  type CrossClientReport,
  type CrossPeer,
  type CrossServerArgs,
  type CrossServerCommand,
  type CrossServerReport,
  type NodeRole,
} from "../lib/cross-node.js";
import type { CrossSample, CrossSamples } from "../lib/cross-report.js";
import type { CrossNodeSize } from "../lib/plan.js";
import { scalePlans } from "../lib/plan-scale.js";
import { startWorker } from "../lib/proc.js";
import { findLocalProcess, processCpuNs } from "../lib/proc-cpu.js";
import { sleep, type RunContext } from "./context.js";

let runs = 0;

/**
 * Where a run's server processes and subscribers are. roles[i] is node i's role; the publisher
 * is the first node with role "publisher" or "both"; subscribers are spread over the nodes
 * that are not publisher-only, in contiguous blocks.
 */
interface Topology {
  readonly id: string;
  readonly size: CrossNodeSize;
  readonly roles: readonly NodeRole[];
}

const nodeName = (roles: readonly NodeRole[], i: number): string =>
  roles.length === 2 ? (roles[i] === "publisher" ? "node A" : "node B") : roles.length === 1 ? "node" : `node ${i + 1}`;

/** cross-node-1000: node A publishes, node B holds the subscribers; one node for the baseline. */
function pairTopology(peer: CrossPeer, ctx: RunContext): Topology {
  return { id: CROSS_NODE_ID, size: ctx.plan.crossNode, roles: peer === "protocast-single" ? ["both"] : ["publisher", "subscriber"] };
}

/** cross-node-4: node 1 publishes and holds subscribers like nodes 2–4. */
function quadTopology(ctx: RunContext): Topology {
  const size = scalePlans[ctx.plan.mode].crossNode4;
  return { id: CROSS_NODE_4_ID, size, roles: Array.from({ length: size.nodes }, (_, i) => (i === 0 ? "both" : "subscriber")) };
}

async function runPeer(peer: CrossPeer, ctx: RunContext, topology: Topology): Promise<CrossSample[]> {
  const { plan, placement } = ctx;
  const { id, roles } = topology;
  const { clients, latencyClients, messages, paced, intervalMs, warmup } = topology.size;
  const names = brokerNames(`${process.pid.toString(36)}${Date.now().toString(36)}${++runs}`);
  // Every server node on the server CPU, the subscribers' process on the client CPU.
  const nodes = roles.map((role, i) => {
    const args: CrossServerArgs = { peer, role, payloadBytes: plan.payloadBytes, names };
    return startWorker<CrossServerReport, CrossServerCommand>(`${peer} ${nodeName(roles, i)}`, {
      file: peer === "socketio-redis" ? "peers/cross-node-socketio.ts" : "peers/cross-node-protocast.ts",
      args,
      cpu: placement.serverCpu,
      taskset: placement.taskset,
    });
  });
  const publisher = nodes[roles.findIndex((r) => r !== "subscriber")]!;
  const holders = nodes.filter((_, i) => roles[i] !== "publisher");
  const clientArgs: CrossClientArgs = { peer: crossDialect(peer), clients, latencyClients, sources: plan.sources, concurrency: plan.concurrency };
  const client = startWorker<CrossClientReport, CrossClientCommand>(`${peer} client`, {
    file: "peers/cross-node-client.ts",
    args: clientArgs,
    cpu: placement.clientCpu,
    taskset: placement.taskset,
  });
  const broker = await brokerPid(peer);
  try {
    const ports = new Map<(typeof nodes)[number], number>();
    for (const node of nodes) ports.set(node, (await node.next("ready", 30_000)).port);
    const t0 = Date.now();
    client.send({ type: "connect-nodes", ports: holders.map((n) => ports.get(n)!) });
    await client.next("ready", 30_000 + clients * 20);
    const connectMs = Date.now() - t0;
    await sleep(200);

    const expect = async (count: number, latency: boolean, extraMs: number): Promise<number> => {
      const limitMs = 20_000 + clients * count * 0.1 + extraMs;
      client.send({ type: "expect", messages: count, timeoutMs: limitMs, latency });
      await client.next("expecting", 10_000);
      return limitMs;
    };
    const check = (done: Extract<CrossClientReport, { type: "done" }>, phase: string): void => {
      if (!done.complete) throw new Error(`${phase}: ${done.received} of ${done.expected} events arrived in time`);
    };

    // Warm-up, paced like the latency phase: proves the path from the publisher to every
    // subscriber and lets the JIT settle on the code that phase runs.
    let limitMs = await expect(warmup, false, warmup * intervalMs);
    publisher.send({ type: "paced", messages: warmup, intervalMs });
    await publisher.next("paced-done", limitMs);
    check(await client.next("done", limitMs + 5000), "warm-up");
    await sleep(100);

    limitMs = await expect(paced, true, paced * intervalMs);
    publisher.send({ type: "paced", messages: paced, intervalMs });
    await publisher.next("paced-done", limitMs);
    const pacedDone = await client.next("done", limitMs + 5000);
    check(pacedDone, "paced");
    const latency = pacedDone.latency;
    if (latency === undefined) throw new Error("paced: no latency samples");
    await sleep(100);

    limitMs = await expect(messages, false, 0);
    const cpuBefore = cpuOf(nodes.map((n) => n.pid), broker);
    publisher.send({ type: "burst", messages, batch: plan.batch });
    const burst = await publisher.next("burst-done", limitMs);
    const done = await client.next("done", limitMs + 5000);
    const cpuAfter = cpuOf(nodes.map((n) => n.pid), broker);
    check(done, "burst");
    const seconds = (done.lastNs - burst.startNs) / 1e9;
    ctx.log(
      `    ${clients} connections in ${connectMs} ms; latency ${latency.samples} samples (${latency.unstamped} unstamped), ` +
        `client CPU ${pacedDone.clientCpuPercent.toFixed(0)}%; burst ${(seconds * 1000).toFixed(0)} ms, client CPU ${done.clientCpuPercent.toFixed(0)}%`,
    );
    const samples: CrossSample[] = [
      { metric: id, peer, value: (clients * messages) / seconds },
      { metric: `${id}:latency-p50-ms`, peer, value: latency.p50Ms },
      { metric: `${id}:latency-p99-ms`, peer, value: latency.p99Ms },
    ];
    if (id === CROSS_NODE_4_ID) {
      // What a capacity model needs besides the fan-out rate: how fast publishes went through
      // the broker, what each cost the broker process, and what all the nodes together spent
      // per delivery (each node decodes every publish once, then writes to its own members).
      samples.push({ metric: `${id}:publishes-per-s`, peer, value: messages / seconds });
      if (cpuBefore.nodes !== undefined && cpuAfter.nodes !== undefined) {
        samples.push({ metric: `${id}:nodes-cpu-us-per-delivery`, peer, value: (cpuAfter.nodes - cpuBefore.nodes) / 1000 / (clients * messages) });
      }
      if (cpuBefore.broker !== undefined && cpuAfter.broker !== undefined) {
        samples.push({ metric: `${id}:broker-cpu-us-per-publish`, peer, value: (cpuAfter.broker - cpuBefore.broker) / 1000 / messages });
      }
    }
    return samples;
  } finally {
    await client.stop();
    for (const node of nodes) await node.stop();
    await removeBrokerState(peer, names, ctx.log);
  }
}

/** CPU time so far (ns) of the server nodes together and of the broker; undefined when unreadable. */
function cpuOf(pids: readonly (number | undefined)[], broker: number | undefined): { nodes: number | undefined; broker: number | undefined } {
  let nodes: number | undefined = 0;
  for (const pid of pids) {
    const ns = pid === undefined ? undefined : processCpuNs(pid);
    nodes = ns === undefined || nodes === undefined ? undefined : nodes + ns;
  }
  return { nodes, broker: broker === undefined ? undefined : processCpuNs(broker) };
}

const LOCAL = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The broker's process id when it runs on this machine (Redis tells it; NATS is found in /proc). */
async function brokerPid(peer: CrossPeer): Promise<number | undefined> {
  try {
    if (peer === "protocast-nats") {
      const u = new URL(NATS_URL);
      return LOCAL.has(u.hostname) ? findLocalProcess("nats-server", Number(u.port || 4222)) : undefined;
    }
    if (peer === "protocast-single" || !LOCAL.has(new URL(REDIS_URL).hostname)) return undefined;
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const pid = /process_id:(\d+)/.exec(await redis.info("server"))?.[1];
      return pid === undefined ? undefined : Number(pid);
    } finally {
      redis.disconnect();
    }
  } catch {
    return undefined;
  }
}

/** Deletes what the run left in the broker: Protocast's Redis keys, or its JetStream stream. */
async function removeBrokerState(peer: CrossPeer, names: BrokerNames, log: (line: string) => void): Promise<void> {
  try {
    if (peer === "protocast-redis") {
      const redis = new Redis(names.redisUrl, { maxRetriesPerRequest: 1 });
      try {
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${names.keyPrefix}*`, "COUNT", 1000);
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        redis.disconnect();
      }
    } else if (peer === "protocast-nats") {
      const nc = await natsConnect({ servers: names.natsServers, timeout: 5000 });
      try {
        await (await jetstreamManager(nc)).streams.delete(names.stream);
      } finally {
        await nc.close();
      }
    }
  } catch (e) {
    log(`    could not remove the broker state of ${peer}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Undefined when Redis and NATS both accept a TCP connection; otherwise which did not. */
export async function brokersDown(timeoutMs = 1000): Promise<string | undefined> {
  const probe = (url: string): Promise<string | undefined> =>
    new Promise((resolve) => {
      const u = new URL(url);
      const socket = tcpConnect(Number(u.port), u.hostname);
      const done = (reason: string | undefined): void => {
        socket.destroy();
        resolve(reason);
      };
      socket.setTimeout(timeoutMs, () => done(`no answer from ${u.host} in ${timeoutMs} ms`));
      socket.once("connect", () => done(undefined));
      socket.once("error", (e) => done(`${u.host}: ${e.message}`));
    });
  const [redis, nats] = await Promise.all([probe(REDIS_URL), probe(NATS_URL)]);
  const down = [redis === undefined ? undefined : `Redis ${redis}`, nats === undefined ? undefined : `NATS ${nats}`].filter((r) => r !== undefined);
  return down.length === 0 ? undefined : down.join("; ");
}

/** One round: every cross-node peer once, in an order that rotates with the round; one retry each. */
export async function crossNodeRound(ctx: RunContext, samples: CrossSamples): Promise<void> {
  await roundOf(CROSS_NODE_ID, CROSS_PEERS, (peer) => pairTopology(peer, ctx), ctx, samples);
}

/** One round of cross-node-4: four nodes for each of its peers. */
export async function crossNode4Round(ctx: RunContext, samples: CrossSamples): Promise<void> {
  await roundOf(CROSS_NODE_4_ID, CROSS_4_PEERS, () => quadTopology(ctx), ctx, samples);
}

async function roundOf(id: string, peers: readonly CrossPeer[], topology: (peer: CrossPeer) => Topology, ctx: RunContext, samples: CrossSamples): Promise<void> {
  const order = peers.map((_, i) => peers[(i + ctx.round - 1) % peers.length]!);
  for (const peer of order) {
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      try {
        const got = await runPeer(peer, ctx, topology(peer));
        samples.add(got);
        ctx.log(`  ${id} ${peer}: ${got[0]!.value.toFixed(1)} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
        break;
      } catch (e) {
        ctx.log(`  ${id} ${peer}: attempt ${attempt} failed: ${e instanceof Error ? e.message : String(e)}`);
        if (attempt >= 2) throw e;
      }
    }
  }
}
