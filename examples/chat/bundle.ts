import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const entry = fileURLToPath(new URL("./public/app.ts", import.meta.url));

/**
 * Bundles the page's script for the browser, in memory. "protocast" points straight at the
 * runtime's public entry: the page runs the same client code as Node does, with the
 * browser's own WebSocket underneath.
 */
export async function bundleApp(): Promise<{ readonly js: string; readonly map: string }> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    // "protocast" resolves through tsconfig.json's paths to the runtime's browser entry.
    tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)),
    // Nothing touches the disk: outdir only names the outputs (and the map's URL).
    write: false,
    outdir: fileURLToPath(new URL("./public/", import.meta.url)),
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "silent",
  });
  const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
  const map = result.outputFiles.find((f) => f.path.endsWith(".js.map"));
  if (js === undefined || map === undefined) throw new Error("esbuild produced no output for the chat page");
  return { js: js.text, map: map.text };
}
