import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { build, type Plugin } from "esbuild";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Root of the repository. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

export interface BufResult {
  readonly code: number;
  readonly stderr: string;
  /** Generated files by path relative to the output directory. */
  readonly files: ReadonlyMap<string, string>;
}

let plugin: Promise<string> | undefined;

/**
 * @bufbuild/protoplugin loads the TypeScript compiler on start (a second of CPU) for the js and
 * dts targets; these tests print TypeScript only, so the bundle gets a stand-in that fails loudly
 * if it is ever used.
 */
const withoutTypeScript: Plugin = {
  name: "without-typescript",
  setup(b) {
    b.onResolve({ filter: /^typescript$/ }, () => ({ path: "typescript", namespace: "stand-in" }));
    b.onLoad({ filter: /.*/, namespace: "stand-in" }, () => ({
      contents: 'export default new Proxy({}, { get(_, key) { throw new Error(`the TypeScript compiler is not in this test bundle (asked for ${String(key)})`); } });',
      loader: "js",
    }));
  },
};

/**
 * The plugin as one JavaScript file that plain `node` runs, bundled from codegen/ once for each
 * version of its sources: starting it costs a fraction of compiling the TypeScript again for
 * every `buf generate`. The file lives under node_modules/.cache, named by a hash of codegen/,
 * so test files running side by side share it and an edit to the plugin makes a new one.
 */
function bundledPlugin(): Promise<string> {
  plugin ??= (async () => {
    const hash = createHash("sha256");
    const sources = (await readdir(join(ROOT, "codegen"), { recursive: true })).filter((f) => f.endsWith(".ts")).sort();
    for (const f of sources) hash.update(f).update(await readFile(join(ROOT, "codegen", f)));
    const dir = join(ROOT, "node_modules", ".cache", "protocast-plugin");
    const out = join(dir, `${hash.digest("hex").slice(0, 16)}.mjs`);
    if (!existsSync(out)) {
      await mkdir(dir, { recursive: true });
      const partial = `${out}.${process.pid}`;
      await build({
        entryPoints: [join(ROOT, "codegen", "protoc-gen-protocast.ts")],
        outfile: partial,
        bundle: true,
        platform: "node",
        format: "esm",
        logLevel: "error",
        plugins: [withoutTypeScript],
      });
      await rename(partial, out);
    }
    return out;
  })();
  return plugin;
}

/**
 * Runs `buf generate` with only the Protocast plugin on one fixture module (a folder under
 * fixtures/, or an absolute path), in a temporary workspace that also holds
 * protocast/v1/options.proto unless `withOptions` is false.
 */
export async function bufGenerate(fixture: string, { withOptions = true } = {}): Promise<BufResult> {
  const dir = await mkdtemp(join(tmpdir(), "protocast-codegen-"));
  try {
    await cp(resolve(FIXTURES, fixture), join(dir, "fixture"), { recursive: true });
    const modules = ["  - path: fixture"];
    if (withOptions) {
      await mkdir(join(dir, "options", "protocast", "v1"), { recursive: true });
      await cp(join(ROOT, "proto", "protocast", "v1", "options.proto"), join(dir, "options", "protocast", "v1", "options.proto"));
      modules.push("  - path: options");
    }
    await writeFile(join(dir, "buf.yaml"), ["version: v2", "modules:", ...modules, ""].join("\n"));
    await writeFile(
      join(dir, "buf.gen.yaml"),
      [
        "version: v2",
        "plugins:",
        `  - local: [${JSON.stringify(process.execPath)}, ${JSON.stringify(await bundledPlugin())}]`,
        "    out: out",
        "    opt: [target=ts, import_extension=js]",
        "    strategy: all",
        "",
      ].join("\n"),
    );
    const { code, stderr } = await run(join(BIN, "buf"), ["generate"], dir);
    return { code, stderr, files: await readTree(join(dir, "out")) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(file: string, args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    // buf finds tsx on PATH, as it does under `npm run gen`.
    const env = { ...process.env, PATH: `${BIN}:${process.env["PATH"] ?? ""}` };
    execFile(file, args, { cwd, env, timeout: 60_000 }, (err, _stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stderr });
    });
  });
}

async function readTree(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch {
    return files;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    files.set(relative(dir, path), await readFile(path, "utf8"));
  }
  return files;
}
