// What the `protocast` command needs to know about the project it runs in and about itself:
// where packages resolve from, which tools are installed, and how to run them.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** A failure the user can fix; printed without a stack trace. */
export class CliError extends Error {
  override readonly name = "CliError";
}

export interface PackageJson {
  name?: string;
  version?: string;
  type?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** The protocast package itself (this file sits in codegen/ or dist/codegen/). */
export function ownPackage(): { readonly root: string; readonly json: PackageJson } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, "utf8")) as PackageJson;
      if (json.name === "protocast") return { root: dir, json };
    }
    const up = dirname(dir);
    if (up === dir) throw new CliError("cannot find protocast's own package.json; reinstall protocast");
    dir = up;
  }
}

export function readProjectPackage(cwd: string): PackageJson {
  const file = join(cwd, "package.json");
  if (!existsSync(file)) {
    throw new CliError(`no package.json in ${cwd}. Run the command in your project's folder (create one with \`npm init -y\`).`);
  }
  try {
    return JSON.parse(readFileSync(file, "utf8")) as PackageJson;
  } catch (err) {
    throw new CliError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Resolves `specifier` as the project would (its node_modules first), or undefined. */
export function resolveFromProject(cwd: string, specifier: string): string | undefined {
  try {
    return createRequire(join(cwd, "package.json")).resolve(specifier);
  } catch {
    return undefined;
  }
}

/**
 * The folder holding protocast/v1/options.proto, relative to the project, in POSIX form for
 * buf.yaml. Resolved through the project, so a hoisted or linked install is found too.
 */
export function protocastProtoModule(cwd: string): string {
  const pkg = resolveFromProject(cwd, "protocast/package.json");
  const root = pkg === undefined ? ownPackage().root : dirname(pkg);
  return relative(cwd, join(root, "proto")).split(sep).join("/") || ".";
}

export interface Tool {
  readonly name: string;
  /** Package that provides it, for the install hint. */
  readonly pkg: string;
  readonly path: string | undefined;
}

/** The code generation tools a project needs, as installed in it. */
export function generationTools(cwd: string): readonly Tool[] {
  return [
    { name: "buf", pkg: "@bufbuild/buf", path: binOf(cwd, "@bufbuild/buf", "bin/buf") },
    { name: "protoc-gen-es", pkg: "@bufbuild/protoc-gen-es", path: binOf(cwd, "@bufbuild/protoc-gen-es", "bin/protoc-gen-es") },
    { name: "@bufbuild/protoplugin", pkg: "@bufbuild/protoplugin", path: resolveFromProject(cwd, "@bufbuild/protoplugin") },
  ];
}

function binOf(cwd: string, pkg: string, bin: string): string | undefined {
  const json = resolveFromProject(cwd, `${pkg}/package.json`);
  if (json === undefined) return undefined;
  const file = join(dirname(json), bin);
  return existsSync(file) ? file : undefined;
}

/**
 * Versions of the generation tools to install: the ones protocast is built and tested with,
 * except that Node 20 gets the last protoc-gen-es line that supports it (2.14 needs Node 22).
 */
export function toolVersions(nodeMajor = Number(process.versions.node.split(".")[0])): Record<string, string> {
  const dev = ownPackage().json.devDependencies ?? {};
  const es = nodeMajor < 22 ? "2.13.0" : `^${dev["@bufbuild/protoc-gen-es"] ?? "2.17.0"}`;
  return {
    "@bufbuild/buf": `^${dev["@bufbuild/buf"] ?? "1.74.0"}`,
    "@bufbuild/protoc-gen-es": es,
    "@bufbuild/protoplugin": es,
    typescript: `^${dev["typescript"] ?? "7.0.2"}`,
  };
}

/** PATH with the project's node_modules/.bin first, so buf finds the plugins installed there. */
export function pathWithProjectBins(cwd: string): string {
  return [join(cwd, "node_modules", ".bin"), process.env["PATH"] ?? ""].join(delimiter);
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command, echoing its output as it comes and keeping it for error messages. */
export function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      process.stdout.write(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
    });
    child.on("error", (err) => reject(new CliError(`could not run ${cmd}: ${err.message}`)));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
