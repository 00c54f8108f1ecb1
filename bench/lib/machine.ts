import { execFileSync } from "node:child_process";
import os from "node:os";
import type { Cpu } from "./proc.js";

export interface Placement {
  readonly taskset: boolean;
  readonly serverCpu: Cpu;
  /** Broadcast and idle-connection clients. */
  readonly clientCpu: Cpu;
  /** The RPC client. */
  readonly rpcClientCpu: Cpu;
  /** One line for the report. */
  readonly description: string;
}

export function machineName(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? "unknown CPU"}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`;
}

function tasksetWorks(cpu: number): boolean {
  try {
    execFileSync("taskset", ["-c", String(cpu), "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * With taskset: every server on CPU 0; the many-connection clients on CPU 1, so that the
 * server's numbers never include client work; the RPC client on CPU 0 next to its server.
 * A round trip between two processes on one CPU is a context switch, while across CPUs it
 * waits for the other CPU to wake up, which on this kind of machine costs more than the
 * whole RPC path and varies from run to run (measured here: ws echo p50 ~35 µs on one CPU,
 * ~90 µs across two). The reference RPC figures were taken on one CPU as well.
 */
export function placement(pin: boolean): Placement {
  const none = { taskset: false, serverCpu: undefined, clientCpu: undefined, rpcClientCpu: undefined };
  if (!pin) return { ...none, description: "not pinned (--no-pin)" };
  if (os.availableParallelism() < 2 || !tasksetWorks(0) || !tasksetWorks(1)) {
    return { ...none, description: "not pinned (taskset or a second CPU unavailable)" };
  }
  return {
    taskset: true,
    serverCpu: 0,
    clientCpu: 1,
    rpcClientCpu: 0,
    description: "taskset: servers on CPU 0; broadcast and idle clients on CPU 1; the RPC client on CPU 0 with its server",
  };
}

/** Soft limit on open files, which child processes inherit; undefined when unknown. */
export function openFileLimit(): number | undefined {
  try {
    const out = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim();
    return out === "unlimited" ? Number.POSITIVE_INFINITY : Number(out);
  } catch {
    return undefined;
  }
}

export function loadAverage(): readonly number[] {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}
