#!/usr/bin/env node
// The `protocast` command: `protocast init` prepares a project, `protocast gen` generates code.
import { parseArgs } from "node:util";
import { gen } from "./cli-gen.js";
import { init } from "./cli-init.js";
import { CliError, ownPackage } from "./cli-project.js";

const USAGE = `Usage: protocast <command> [options]

Commands:
  init   Write buf.yaml, buf.gen.yaml, a sample service with a server and a client, and the
         npm scripts; add the code generation tools to devDependencies and install them.
           --proto <dir>   folder of your .proto files (default: proto)
           --out <dir>     folder for generated code (default: src/gen)
           --no-sample     only the buf files and the gen script
           --no-install    do not run npm install
           --force         overwrite files that exist
  gen    Lint the .proto files and generate code with buf, as buf.gen.yaml says.
           --no-lint       skip buf lint

Options: --help, --version`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
      proto: { type: "string", default: "proto" },
      out: { type: "string", default: "src/gen" },
      "no-sample": { type: "boolean", default: false },
      "no-install": { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      "no-lint": { type: "boolean", default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.version === true) {
    console.log(ownPackage().json.version ?? "unknown");
    return;
  }
  if (values.help === true || command === undefined) {
    console.log(USAGE);
    return;
  }
  if (rest.length > 0) throw new CliError(`unexpected argument ${JSON.stringify(rest[0])}\n\n${USAGE}`);
  const cwd = process.cwd();
  switch (command) {
    case "init":
      await init(cwd, { protoDir: values.proto, outDir: values.out, force: values.force, install: !values["no-install"], sample: !values["no-sample"] });
      return;
    case "gen":
      await gen(cwd, { lint: !values["no-lint"] });
      return;
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CliError || (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))) {
    console.error(`protocast: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exitCode = 1;
});
