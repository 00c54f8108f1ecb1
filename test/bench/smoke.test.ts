/**
 * The benchmark harness works end to end: `bench/run.ts --smoke` runs every scenario once for
 * every peer and writes a results file of the documented shape. Not a timed test: it never
 * judges speed, only that every number is there and positive. It belongs to the deep run
 * (`npm run test:deep`, run by CI), not to `npm test`: it starts every scenario's processes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));

const SCENARIOS = [
  "broadcast-1000",
  "broadcast-5000",
  "broadcast-1000-reliable",
  "broadcast-1000-deflate",
  "rpc-sequential-p50",
  "rpc-sequential-p99",
  "rpc-pipelined",
  "idle-memory-per-conn",
  "codec",
  "payload-codec",
  "browser-bundle",
];
/** A browser needs no library for raw WebSocket, so that peer's bundle is 0 bytes. */
const ZERO_ALLOWED = new Set(["browser-bundle:ws", "gzip:ws"]); // secondary entries are named without their scenario
const PEERS = ["protocast", "ws", "socketio"] as const;

interface Spread {
  median: number;
  min: number;
  max: number;
}

interface Entry {
  name: string;
  unit: string;
  higher_is_better: boolean;
  protocast: Spread;
  ws: Spread;
  socketio: Spread;
  ratio_vs_ws: number;
  ratio_vs_socketio: number;
  secondary?: Entry[];
}

function expectEntry(e: Entry): void {
  expect(typeof e.unit).toBe("string");
  expect(e.unit).not.toBe("");
  expect(typeof e.higher_is_better).toBe("boolean");
  for (const peer of PEERS) {
    const s = e[peer];
    expect(Object.keys(s).sort(), `${e.name}.${peer}`).toEqual(["max", "median", "min"]);
    const zero = ZERO_ALLOWED.has(`${e.name}:${peer}`);
    for (const v of [s.median, s.min, s.max]) {
      if (zero) expect(v, `${e.name}.${peer}`).toBe(0);
      else expect(v, `${e.name}.${peer}`).toBeGreaterThan(0);
    }
    expect(s.min).toBeLessThanOrEqual(s.median);
    expect(s.median).toBeLessThanOrEqual(s.max);
  }
  if (!ZERO_ALLOWED.has(`${e.name}:ws`)) expect(e.ratio_vs_ws, `${e.name} ratio_vs_ws`).toBeGreaterThan(0);
  expect(e.ratio_vs_socketio, `${e.name} ratio_vs_socketio`).toBeGreaterThan(0);
}

// Every smoke scenario for three peers takes about 2 minutes on the loaded 2-core machine, and
// up to twice that with the rest of the suite running beside it.
it("runs every scenario for every peer and writes the documented results shape", { timeout: 360_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "protocast-bench-"));
  const out = join(dir, "results.json");
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "bench/run.ts", "--smoke", "--out", out], {
      cwd: root,
      timeout: 350_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const results = JSON.parse(readFileSync(out, "utf8")) as {
      machine: unknown;
      node: unknown;
      rounds: unknown;
      scenarios: Entry[];
    };
    expect(typeof results.machine).toBe("string");
    expect(results.node).toBe(process.version);
    expect(results.rounds).toBe(1);
    expect(results.scenarios.map((s) => s.name)).toEqual(SCENARIOS);
    for (const s of results.scenarios) {
      expectEntry(s);
      for (const e of s.secondary ?? []) expectEntry(e);
    }
    // The same results as a table on stdout.
    for (const name of SCENARIOS) expect(stdout).toContain(name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
