import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect, createServer } from "node:net";

export const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379";
export const natsUrl = process.env["NATS_URL"] ?? "nats://127.0.0.1:4222";

/** host and port of a redis:// or nats:// URL. */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** Undefined when a TCP connection opens within the timeout; otherwise why not. */
export function probe(url: string, timeoutMs = 1_000): Promise<string | undefined> {
  const { host, port } = hostPort(url);
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const done = (reason: string | undefined): void => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer from ${host}:${port} in ${timeoutMs} ms`));
    socket.once("connect", () => done(undefined));
    socket.once("error", (e) => done(`${host}:${port}: ${e.message}`));
  });
}

/**
 * What a test file does about a missing service: on a laptop it skips with the reason
 * printed; in CI (CI=true) the service is part of the machine, so its absence fails the run.
 */
export function skipReason(service: string, reason: string | undefined): string | undefined {
  if (reason === undefined) return undefined;
  if (process.env["CI"] === "true") throw new Error(`${service} is required in CI but unavailable: ${reason}`);
  console.warn(`skipping ${service} tests: ${reason}`);
  return reason;
}

/** Whether a program is on PATH (for tests that start a broker of their own). */
export function hasProgram(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString("hex")}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A broker process the test owns: started on its port, killed by its PID. */
export interface OwnServer {
  readonly port: number;
  readonly process: ChildProcess;
  kill(): Promise<void>;
}

export async function startOwnServer(command: string, args: readonly string[], port: number, timeoutMs = 5_000): Promise<OwnServer> {
  const child = spawn(command, args, { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const end = Date.now() + timeoutMs;
  while ((await probe(`tcp://127.0.0.1:${port}`, 200)) !== undefined) {
    if (Date.now() > end || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`${command} did not listen on ${port} within ${timeoutMs} ms`);
    }
    await sleep(20);
  }
  return {
    port,
    process: child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { until } from "../support/wait.js";
