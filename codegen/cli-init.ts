// `protocast init`: prepares a project to generate and run Protocast services.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CliError, generationTools, protocastProtoModule, readProjectPackage, run, toolVersions, type PackageJson } from "./cli-project.js";
import { SAMPLE_PROTO_PATH, bufGenYaml, bufYaml, sampleClient, sampleProto, sampleServer, sampleTsconfig, type TemplateOptions } from "./cli-templates.js";

export interface InitOptions {
  readonly protoDir: string;
  readonly outDir: string;
  /** Overwrite files that exist. */
  readonly force: boolean;
  /** Run `npm install` when tools were added to devDependencies. */
  readonly install: boolean;
  /** Write the sample service, server and client. */
  readonly sample: boolean;
}

export async function init(cwd: string, o: InitOptions): Promise<void> {
  const pkg = readProjectPackage(cwd);
  const t: TemplateOptions = { protoModule: protocastProtoModule(cwd), protoDir: o.protoDir, outDir: o.outDir };

  const files: [string, string][] = [
    ["buf.yaml", bufYaml(t)],
    ["buf.gen.yaml", bufGenYaml(t)],
  ];
  if (o.sample) {
    files.push(
      [join(o.protoDir, SAMPLE_PROTO_PATH), sampleProto],
      ["src/server.ts", sampleServer(t)],
      ["src/client.ts", sampleClient(t)],
      ["tsconfig.json", sampleTsconfig],
    );
  }
  for (const [name, text] of files) {
    const file = join(cwd, name);
    if (existsSync(file) && !o.force) {
      console.log(`  kept   ${name} (exists; --force overwrites)`);
      continue;
    }
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    console.log(`  wrote  ${name}`);
  }
  if (existsSync(join(cwd, "buf.yaml")) && !readFileSync(join(cwd, "buf.yaml"), "utf8").includes(t.protoModule)) {
    console.log(`  note   buf.yaml does not list Protocast's protos; add "  - path: ${t.protoModule}" under modules`);
  }

  const added = updatePackage(cwd, pkg, o.sample);
  if (added.length > 0 && o.install) {
    const npm = process.env["npm_execpath"];
    const [cmd, args] = npm !== undefined && npm.endsWith(".js") ? [process.execPath, [npm]] : ["npm", []];
    console.log(`\ninstalling ${added.join(", ")}`);
    const result = await run(cmd, [...args, "install", "--no-audit", "--no-fund"], cwd);
    if (result.code !== 0) throw new CliError("npm install failed (its output is above); run it again, then `npm run gen`");
  }
  console.log(`\nNext: npm run gen${o.sample ? " && npm run build && npm start   (then, in another terminal: npm run client)" : ""}`);
}

/** Adds what is missing to package.json: ESM, scripts, the generation tools. Returns the added tools. */
function updatePackage(cwd: string, pkg: PackageJson, sample: boolean): string[] {
  const next: PackageJson = { ...pkg };
  if (next.type !== "module") {
    next.type = "module";
    console.log(`  set    "type": "module" in package.json (generated code is ES modules)`);
  }
  const scripts: Record<string, string> = { gen: "protocast gen" };
  if (sample) Object.assign(scripts, { build: "tsc", start: "node dist/server.js", client: "node dist/client.js" });
  next.scripts = { ...pkg.scripts };
  for (const [name, cmd] of Object.entries(scripts)) {
    if (next.scripts[name] === undefined) {
      next.scripts[name] = cmd;
      console.log(`  added  script "${name}": ${cmd}`);
    }
  }
  const versions = toolVersions();
  const have = { ...pkg.dependencies, ...pkg.devDependencies };
  const installed = new Set(generationTools(cwd).filter((t) => t.path !== undefined).map((t) => t.pkg));
  const added: string[] = [];
  next.devDependencies = { ...pkg.devDependencies };
  for (const [name, range] of Object.entries(versions)) {
    if (name === "typescript" && !sample) continue;
    if (have[name] !== undefined || installed.has(name)) continue;
    next.devDependencies[name] = range;
    added.push(`${name}@${range}`);
    console.log(`  added  devDependency ${name}@${range}`);
  }
  if (sample && have["@types/node"] === undefined) {
    next.devDependencies["@types/node"] = `^${process.versions.node.split(".")[0]}`;
    added.push("@types/node");
  }
  writeFileSync(join(cwd, "package.json"), JSON.stringify(next, null, 2) + "\n");
  return added;
}
