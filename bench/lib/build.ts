import { build } from "esbuild";
import { fileURLToPath } from "node:url";

/** Worker entry points, relative to bench/. */
export const WORKERS = [
  "peers/protocast-server.ts",
  "peers/ws-server.ts",
  "peers/socketio-server.ts",
  "peers/fan-client.ts",
  "peers/rpc-client.ts",
  "peers/cross-node-protocast.ts",
  "peers/cross-node-socketio.ts",
  "peers/cross-node-client.ts",
  "scenarios/codec-worker.ts",
  "scenarios/payload-codec-worker.ts",
] as const;

const benchDir = fileURLToPath(new URL("..", import.meta.url));
export const buildDir = `${benchDir}.build/`;

/**
 * Compiles every worker to one plain JavaScript file before a run, so that all peers run as
 * JavaScript the way an application ships: tsx would transform Protocast's TypeScript on the
 * fly with `keepNames`, which wraps every function expression in a `__name()` call — a cost
 * per closure that compiled code does not have (and that ws and Socket.IO, already JavaScript,
 * never pay). Packages stay external and load from node_modules as usual; source maps let
 * profile-summary.ts point at the TypeScript.
 */
export async function buildWorkers(): Promise<void> {
  await build({
    absWorkingDir: benchDir,
    entryPoints: [...WORKERS],
    outdir: buildDir,
    outbase: ".",
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    // Generated code imports the runtime by its package name: tsconfig.json's paths map it
    // (and protocast/protocast/v1/*) to the sources, ahead of "packages: external".
    tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)),
    sourcemap: "linked",
    keepNames: false,
    minify: false,
    logLevel: "warning",
  });
}
