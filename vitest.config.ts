import { fileURLToPath } from "node:url";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";

/**
 * The files that take longest, longest first (measured with
 * `npx vitest run --reporter=json --outputFile=...`). They start before everything else so
 * that no long file is left running alone at the end; files not listed follow in vitest's
 * own order. A file that grows long belongs here.
 */
const LONG_FILES = [
  // npm test
  "test/codegen/codec.property.test.ts",
  "test/brokers/session-store.test.ts",
  "test/brokers/idempotency.test.ts",
  "test/brokers/cluster.test.ts",
  "test/hostile/envelope-fuzz.test.ts",
  "test/brokers/nats.test.ts",
  "test/codegen/wire-codec.test.ts",
  "test/brokers/redis.test.ts",
  "test/property/delivery.property.test.ts",
  "test/wire/generated-codec.test.ts",
  "test/docs/readme.test.ts",
  "test/chaos/kill-sockets.test.ts",
  "test/hostile/handshake.test.ts",
  // npm run test:system
  "test/package/outside-repo.test.ts",
  "test/brokers/multi-node.test.ts",
  "test/browser/fallback.test.ts",
  "test/brokers/failover.test.ts",
  "test/browser/outbox.test.ts",
  "test/browser/refusal.test.ts",
  "test/brokers/epoch-restart.test.ts",
  // npm run test:deep
  "test/bench/smoke.test.ts",
];

/**
 * Files that run in a process of their own: those that measure the whole process (active
 * handles, heap, RSS), fake its timers, or hold timing bounds that a worker shared with earlier
 * files (their leftover heap and timers) could push over. Every other file shares its worker's
 * module cache with the files before it, which saves loading vitest, the runtime and fast-check
 * again for every file (19 small files: 24 s of CPU isolated, 14 s shared).
 */
const OWN_PROCESS = [
  "test/e2e/lifecycle.test.ts",
  "test/e2e/idempotency-expiry.test.ts",
  "test/hostile/rfc6455.test.ts",
  "test/hostile/envelope-fuzz.test.ts",
  "test/session/idempotency-expiry.test.ts",
  "test/conformance/conformance.test.ts",
  // Counts the process's active timeouts around an abandoned wait.
  "test/brokers/idempotency.test.ts",
  // Its one stall (events stopped 300 short of 10,000 while connected) came in a shared worker.
  "test/chaos/kill-sockets.test.ts",
];

/**
 * The system suite (`npm run test:system`): files that start other processes or a browser —
 * Chromium, the packed package installed with npm into an empty folder and run on two Node
 * versions, server nodes in processes of their own killed with SIGKILL, brokers of their own
 * stopped and restarted. They hold most of the suite's CPU (about 100 s of its 250 s on a
 * two-core machine), so the everyday `npm test` leaves them to this run; `npm run test:all`
 * and CI run both.
 */
const SYSTEM = [
  "test/browser/chat.test.ts",
  "test/browser/compression.test.ts",
  "test/browser/fallback.test.ts",
  "test/browser/outbox.test.ts",
  "test/browser/refusal.test.ts",
  "test/package/outside-repo.test.ts",
  "test/brokers/multi-node.test.ts",
  "test/brokers/failover.test.ts",
  "test/brokers/epoch-restart.test.ts",
  "test/brokers/redis-restart.test.ts",
  "test/brokers/nats-restart.test.ts",
];
const SUITE = process.env["PROTOCAST_SUITE"] === "system" ? "system" : "everyday";
/** Files this run leaves out; the system run includes nothing else. */
const NOT_HERE = SUITE === "system" ? [] : SYSTEM;
const ONLY_HERE = SUITE === "system" ? SYSTEM : undefined;

/**
 * With PROTOCAST_TEST_REPORTS set (CI sets it), every run also writes a JSON report to that
 * folder, named by suite: vitest.json, vitest-system.json, vitest-deep.json.
 */
const REPORTS = process.env["PROTOCAST_TEST_REPORTS"];
const REPORT_NAME = process.env["PROTOCAST_TEST_DEPTH"] === "deep" ? "vitest-deep.json" : SUITE === "system" ? "vitest-system.json" : "vitest.json";

/**
 * Files that run only in the deep run (`npm run test:deep`, which CI runs after the suite): the
 * benchmark harness's smoke run, which starts every scenario's processes for three peers and
 * judges nothing but the shape of its results.
 */
const DEEP_ONLY = process.env["PROTOCAST_TEST_DEPTH"] === "deep" ? [] : ["test/bench/smoke.test.ts"];

/** The own-process files of this run (an empty include would mean every file to vitest). */
const OWN_HERE = OWN_PROCESS.filter((f) => (ONLY_HERE ?? OWN_PROCESS).includes(f) && !NOT_HERE.includes(f));

class LongFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = LONG_FILES.findIndex((name) => f.moduleId.endsWith(name));
      return i < 0 ? LONG_FILES.length : i;
    };
    const rest = await super.sort(files);
    return rest.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

const alias = [
  // The repository runs from source: "protocast" and its subpaths point at the TypeScript
  // entries that the package's exports point at in dist/ (see tsconfig.json "paths").
  { find: /^protocast\/protocast\/v1\/(.*)\.js$/, replacement: fileURLToPath(new URL("./generated/protocast/v1/", import.meta.url)) + "$1.ts" },
  { find: /^protocast\/(node|redis|nats|ops|otel)$/, replacement: fileURLToPath(new URL("./runtime/", import.meta.url)) + "$1.ts" },
  { find: /^protocast$/, replacement: fileURLToPath(new URL("./runtime/index.node.ts", import.meta.url)) },
];

export default defineConfig({
  resolve: { alias },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Most suites wait on sockets, timers and brokers rather than the CPU: four workers on this
    // two-core machine halve the wall time. Timing bounds in tests are generous for that load.
    maxWorkers: 4,
    sequence: { sequencer: LongFirst },
    // Vite's transforms of the sources are kept on disk between runs (node_modules/.experimental-vitest-cache).
    experimental: { fsModuleCache: true },
    ...(REPORTS === undefined ? {} : { reporters: ["default", "json"], outputFile: { json: `${REPORTS}/${REPORT_NAME}` } }),
    projects: [
      { extends: true, test: { name: "shared", include: ONLY_HERE ?? ["test/**/*.test.ts"], exclude: [...OWN_PROCESS, ...DEEP_ONLY, ...NOT_HERE], isolate: false } },
      ...(OWN_HERE.length === 0 ? [] : [{ extends: true as const, test: { name: "own-process", include: OWN_HERE, isolate: true } }]),
    ],
  },
});
