// `protocast gen`: lints the project's .proto files and generates messages, typed clients and
// handlers with buf, using the tools installed in the project.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CliError, generationTools, pathWithProjectBins, protocastProtoModule, run, toolVersions, type RunResult } from "./cli-project.js";

export interface GenOptions {
  /** Skip `buf lint`. */
  readonly lint: boolean;
}

export async function gen(cwd: string, o: GenOptions): Promise<void> {
  for (const file of ["buf.yaml", "buf.gen.yaml"]) {
    if (!existsSync(join(cwd, file))) {
      throw new CliError(`no ${file} in ${cwd}. Run \`npx protocast init\` to write one (or run the command where your buf workspace is).`);
    }
  }
  const tools = generationTools(cwd);
  const missing = tools.filter((t) => t.path === undefined);
  if (missing.length > 0) {
    const versions = toolVersions();
    const pkgs = missing.map((t) => `${t.pkg}@${JSON.stringify(versions[t.pkg] ?? "latest")}`);
    throw new CliError(`protocast gen needs ${missing.map((t) => t.pkg).join(", ")} in this project. Install with:\n  npm install -D ${pkgs.join(" ")}`);
  }
  const buf = tools[0]!.path!;
  const env = { ...process.env, PATH: pathWithProjectBins(cwd) };
  if (o.lint) {
    const lint = await run(buf, ["lint"], cwd, env);
    if (lint.code !== 0) throw new CliError(`buf lint found problems (above).${hint(cwd, lint)}`);
  }
  const generate = await run(buf, ["generate"], cwd, env);
  if (generate.code !== 0) throw new CliError(`buf generate failed (above).${hint(cwd, generate)}`);
  console.log("protocast gen: done");
}

/** A fix for the failures people meet first. */
function hint(cwd: string, r: RunResult): string {
  const out = r.stderr + r.stdout;
  if (/protocast\/v1\/options\.proto/.test(out) && /does not exist|not found/.test(out)) {
    return `\nbuf cannot find protocast/v1/options.proto: list Protocast's protos as a module in buf.yaml:\n  modules:\n    - path: ${protocastProtoModule(cwd)}`;
  }
  if (/protoc-gen-protocast/.test(out)) {
    return "\nbuf cannot run protoc-gen-protocast: it comes with the protocast package (npm install protocast).";
  }
  return "";
}
