/**
 * Cross-node fan-out: `clients` subscribers of one channel on node B; node A, another server
 * process sharing a broker with B, publishes. Peers: Protocast on Redis, on NATS, on one node
 * with the embedded broker (baseline, publisher and subscribers on the same node), and
 * Socket.IO with @socket.io/redis-adapter. Per run, after `warmup` unmeasured messages:
 *   latency      = paced phase, one message every intervalMs: arrival at each client − the
 *                  publish stamp in the payload (hrtime µs), p50/p99 over every delivery;
 *   deliveries/s = burst phase, plan.batch per turn: clients × messages ÷ (last event at the
 *                  last client − first publish).
 */
import { connect as tcpConnect } from "node:net";
import { Redis } from "ioredis";
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import {
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
import { startWorker } from "../lib/proc.js";
import { sleep, type RunContext } from "./context.js";

let runs = 0;

async function runPeer(peer: CrossPeer, ctx: RunContext): Promise<CrossSample[]> {
  const { plan, placement } = ctx;
  const { clients, latencyClients, messages, paced, intervalMs, warmup } = plan.crossNode;
  const names = brokerNames(`${process.pid.toString(36)}${Date.now().toString(36)}${++runs}`);
  const single = peer === "protocast-single";
  // Both server nodes on the server CPU, the subscribers' process on the client CPU.
  const startNode = (role: NodeRole) => {
    const args: CrossServerArgs = { peer, role, payloadBytes: plan.payloadBytes, names };
    return startWorker<CrossServerReport, CrossServerCommand>(`${peer} ${role === "publisher" ? "node A" : "node B"}`, {
      file: peer === "socketio-redis" ? "peers/cross-node-socketio.ts" : "peers/cross-node-protocast.ts",
      args,
      cpu: placement.serverCpu,
      taskset: placement.taskset,
    });
  };
  const nodeB = startNode(single ? "both" : "subscriber");
  const nodeA = single ? nodeB : startNode("publisher");
  const clientArgs: CrossClientArgs = { peer: crossDialect(peer), clients, latencyClients, sources: plan.sources, concurrency: plan.concurrency };
  const client = startWorker<CrossClientReport, CrossClientCommand>(`${peer} client`, {
    file: "peers/cross-node-client.ts",
    args: clientArgs,
    cpu: placement.clientCpu,
    taskset: placement.taskset,
  });
  try {
    const { port } = await nodeB.next("ready", 30_000);
    if (!single) await nodeA.next("ready", 30_000);
    const t0 = Date.now();
    client.send({ type: "connect", port });
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

    // Warm-up, paced like the latency phase: proves the path from A to every subscriber and
    // lets the JIT settle on the code that phase runs.
    let limitMs = await expect(warmup, false, warmup * intervalMs);
    nodeA.send({ type: "paced", messages: warmup, intervalMs });
    await nodeA.next("paced-done", limitMs);
    check(await client.next("done", limitMs + 5000), "warm-up");
    await sleep(100);

    limitMs = await expect(paced, true, paced * intervalMs);
    nodeA.send({ type: "paced", messages: paced, intervalMs });
    await nodeA.next("paced-done", limitMs);
    const pacedDone = await client.next("done", limitMs + 5000);
    check(pacedDone, "paced");
    const latency = pacedDone.latency;
    if (latency === undefined) throw new Error("paced: no latency samples");
    await sleep(100);

    limitMs = await expect(messages, false, 0);
    nodeA.send({ type: "burst", messages, batch: plan.batch });
    const burst = await nodeA.next("burst-done", limitMs);
    const done = await client.next("done", limitMs + 5000);
    check(done, "burst");
    const seconds = (done.lastNs - burst.startNs) / 1e9;
    ctx.log(
      `    ${clients} connections in ${connectMs} ms; latency ${latency.samples} samples (${latency.unstamped} unstamped), ` +
        `client CPU ${pacedDone.clientCpuPercent.toFixed(0)}%; burst ${(seconds * 1000).toFixed(0)} ms, client CPU ${done.clientCpuPercent.toFixed(0)}%`,
    );
    return [
      { metric: CROSS_NODE_ID, peer, value: (clients * messages) / seconds },
      { metric: `${CROSS_NODE_ID}:latency-p50-ms`, peer, value: latency.p50Ms },
      { metric: `${CROSS_NODE_ID}:latency-p99-ms`, peer, value: latency.p99Ms },
    ];
  } finally {
    await client.stop();
    if (!single) await nodeA.stop();
    await nodeB.stop();
    await removeBrokerState(peer, names, ctx.log);
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
  const order = CROSS_PEERS.map((_, i) => CROSS_PEERS[(i + ctx.round - 1) % CROSS_PEERS.length]!);
  for (const peer of order) {
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      try {
        const got = await runPeer(peer, ctx);
        samples.add(got);
        ctx.log(`  ${CROSS_NODE_ID} ${peer}: ${got[0]!.value.toFixed(1)} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
        break;
      } catch (e) {
        ctx.log(`  ${CROSS_NODE_ID} ${peer}: attempt ${attempt} failed: ${e instanceof Error ? e.message : String(e)}`);
        if (attempt >= 2) throw e;
      }
    }
  }
}
