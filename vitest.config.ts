import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // The repository runs from source: "protocast" and its subpaths point at the TypeScript
    // entries that the package's exports point at in dist/ (see tsconfig.json "paths").
    alias: [
      { find: /^protocast\/protocast\/v1\/(.*)\.js$/, replacement: fileURLToPath(new URL("./generated/protocast/v1/", import.meta.url)) + "$1.ts" },
      { find: /^protocast\/(node|redis|nats|ops)$/, replacement: fileURLToPath(new URL("./runtime/", import.meta.url)) + "$1.ts" },
      { find: /^protocast$/, replacement: fileURLToPath(new URL("./runtime/index.node.ts", import.meta.url)) },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Most suites wait on sockets, timers and brokers rather than the CPU: four workers on this
    // two-core machine halve the wall time. Timing bounds in tests are generous for that load.
    maxWorkers: 4,
  },
});
