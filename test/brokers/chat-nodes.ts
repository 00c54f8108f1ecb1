import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** A ChatService node in a process of its own, on a shared broker; killed by its PID. */
export interface ChatNode {
  readonly port: number;
  readonly process: ChildProcess;
  /** SIGKILL: its sockets close at once, nothing of it says goodbye. */
  kill(): Promise<void>;
}

/**
 * Starts test/brokers/node-main.ts on `port`, on a broker URL (redis:// or nats://);
 * `sendDelayMs` keeps every sendMessage running that long before it publishes.
 */
export async function startChatNode(port: number, brokerUrl: string, sendDelayMs = 0): Promise<ChatNode> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/brokers/node-main.ts"], {
    cwd: root,
    env: { ...process.env, BROKER: brokerUrl, SEND_DELAY_MS: String(sendDelayMs), PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node on ${port} did not start in 30 s`)), 30_000);
    child.stdout?.on("data", (d: Buffer) => {
      if (/node \S+ on \d+/.test(d.toString())) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node on ${port} exited with ${code}`));
    });
  });
  return {
    port,
    process: child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** The median and the 99th percentile of some durations (nearest rank). */
export function percentiles(values: readonly number[]): { p50: number; p99: number } {
  if (values.length === 0) return { p50: NaN, p99: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { p50: rank(0.5), p99: rank(0.99) };
}
