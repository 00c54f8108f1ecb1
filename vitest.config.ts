import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    alias: {
      "protocast/node": fileURLToPath(new URL("./runtime/node.ts", import.meta.url)),
      "protocast/ops": fileURLToPath(new URL("./runtime/ops.ts", import.meta.url)),
      protocast: fileURLToPath(new URL("./runtime/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
