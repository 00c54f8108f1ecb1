/**
 * The part of every server process that is the same for all peers: it reports the port,
 * runs broadcast bursts on command, and measures its own CPU time and memory.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { nowNs, type Memory, type ServerArgs, type ServerCommand, type ServerReport } from "../lib/messages.js";
import { onCommand, report } from "../lib/proc.js";
import { CpuProfiler } from "../lib/profiler.js";

export interface PeerServer {
  readonly port: number;
  connections(): number;
  /** Publishes broadcast message number `seq` (1-based) to every subscriber. */
  publish(seq: number): void;
}

const send = (m: ServerReport): void => report(m);

const gc = (globalThis as { gc?: () => void }).gc;

async function settledMemory(): Promise<Memory> {
  if (gc === undefined) throw new Error("the server process needs --expose-gc to measure memory");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

/**
 * Serves the orchestrator's commands. A burst publishes `batch` messages per event-loop turn,
 * so that a server may coalesce the writes of one turn (as the runtime and the ws peer do),
 * then yields to the loop to let sockets drain and acknowledgements in.
 */
export async function serve(server: PeerServer, args: ServerArgs): Promise<void> {
  let cpuFrom: NodeJS.CpuUsage | undefined;
  const profiler = args.profile === undefined ? undefined : new CpuProfiler(args.profile);
  const profileBursts = args.mode === "broadcast" || args.mode === "reliable" || args.mode === "deflate";
  onCommand<ServerCommand>(
    async (command) => {
      switch (command.type) {
        case "burst": {
          if (profileBursts) await profiler?.start();
          cpuFrom = process.cpuUsage();
          const startNs = nowNs();
          let seq = 0;
          while (seq < command.messages) {
            const end = Math.min(command.messages, seq + command.batch);
            while (seq < end) server.publish(++seq);
            if (seq < command.messages) await nextTurn();
          }
          send({ type: "burst-done", startNs, lastPublishNs: nowNs() });
          return;
        }
        case "cpu": {
          const used = process.cpuUsage(cpuFrom);
          send({ type: "cpu", cpuUs: used.user + used.system });
          await profiler?.stop();
          return;
        }
        case "memory":
          send({ type: "memory", memory: await settledMemory(), connections: server.connections() });
          return;
        default:
          return;
      }
    },
    // Exiting closes every socket at once; a graceful close of 10,000 connections would only
    // add time and noise between runs.
    async () => profiler?.stop(),
  );
  if (!profileBursts) await profiler?.start();
  send({ type: "ready", port: server.port });
}
