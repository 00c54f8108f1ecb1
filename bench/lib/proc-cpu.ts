/**
 * CPU time of other processes on this machine, read from /proc: the server nodes of a
 * cross-node run (the harness started them) and the broker (Redis or NATS, when it runs here).
 * Linux only; undefined elsewhere or when the process is not visible.
 */
import { readdirSync, readFileSync } from "node:fs";

/** CPU time of every thread of `pid` so far, in nanoseconds (first field of schedstat). */
export function processCpuNs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    }
    return ns;
  } catch {
    return undefined;
  }
}

/** The pid of a local process whose command line holds `program` and `port`, if exactly one does. */
export function findLocalProcess(program: string, port: number): number | undefined {
  let found: number[] = [];
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      } catch {
        continue;
      }
      if (!(argv[0] ?? "").split(" ")[0]!.endsWith(program)) continue;
      const line = argv.join(" ");
      if (line.includes(String(port)) || !/\d{4,5}/.test(line)) found.push(Number(entry));
    }
  } catch {
    found = [];
  }
  return found.length === 1 ? found[0] : undefined;
}
