// The dependency rule of DESIGN.md, checked on every import of the runtime and the generator:
// imports point inward (errors <- wire <- session/codec <- transport/broker/service <- server,
// client <- adapters <- entries), client and server never import each other, only adapters and
// the Node entries touch Node, ws or an engine client, and codegen never imports the runtime.
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ts } from "ts-morph";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Rank of each runtime folder: a file may import its own folder or a lower rank. */
const RANK: Record<string, number> = {
  errors: 0,
  wire: 1,
  session: 2,
  codec: 2,
  transport: 3,
  broker: 3,
  service: 3,
  server: 4,
  client: 4,
  adapters: 5,
};
/** Files directly in runtime/: the public entries, allowed to import anything. */
const ENTRY = 6;
/** Folders of the same rank that must not import each other. */
const APART = [["server", "client"]];
// @opentelemetry/api is browser-safe, but an optional peer: only its adapter may load it.
const PLATFORM = /^(node:|ws$|ioredis$|@nats-io\/|pino$|prom-client$|@opentelemetry\/)/;
const NODE_ENTRIES = new Set(["index.node.ts", "node.ts", "redis.ts", "nats.ts", "ops.ts"]);

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith(".ts"))
    .map((d) => join(d.parentPath, d.name));
}

/** Module specifiers of a file's imports, re-exports and dynamic imports, as TypeScript reads them. */
function imports(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles.map((f) => f.fileName);
}

/** The runtime folder a path under runtime/ belongs to ("" for the entries). */
function folderOf(path: string): string {
  const parts = relative(join(ROOT, "runtime"), path).split("/");
  return parts.length > 1 ? parts[0]! : "";
}

describe("layering", () => {
  const runtimeFiles = files(join(ROOT, "runtime"));

  it("knows every runtime folder", () => {
    const folders = new Set(runtimeFiles.map(folderOf).filter((f) => f !== ""));
    expect([...folders].filter((f) => RANK[f] === undefined)).toEqual([]);
  });

  it("runtime imports point inward, and client and server stay apart", () => {
    const problems: string[] = [];
    for (const file of runtimeFiles) {
      const from = folderOf(file);
      const fromRank = from === "" ? ENTRY : RANK[from]!;
      for (const spec of imports(file)) {
        if (!spec.startsWith(".")) continue;
        const to = folderOf(join(file, "..", spec));
        const toRank = to === "" ? ENTRY : RANK[to]!;
        const where = `${relative(ROOT, file)} imports ${spec}`;
        if (toRank > fromRank) problems.push(`${where}: ${from || "entry"} (rank ${fromRank}) may not import ${to || "entry"} (rank ${toRank})`);
        if (APART.some(([a, b]) => (from === a && to === b) || (from === b && to === a))) problems.push(`${where}: ${from} and ${to} must not import each other`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("only adapters and the Node entries import Node, ws, engine clients or OpenTelemetry", () => {
    const problems: string[] = [];
    for (const file of runtimeFiles) {
      const from = folderOf(file);
      const name = relative(join(ROOT, "runtime"), file);
      if (from === "adapters" || NODE_ENTRIES.has(name)) continue;
      for (const spec of imports(file)) if (PLATFORM.test(spec)) problems.push(`${relative(ROOT, file)} imports ${spec}`);
    }
    expect(problems).toEqual([]);
  });

  it("no file of the runtime imports itself back through others (no import cycles, types included)", () => {
    const graph = new Map<string, string[]>();
    for (const file of runtimeFiles) {
      graph.set(
        file,
        imports(file)
          .filter((spec) => spec.startsWith("."))
          .map((spec) => join(file, "..", spec).replace(/\.js$/, ".ts")),
      );
    }
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const path: string[] = [];
    const visit = (file: string): void => {
      state.set(file, "open");
      path.push(file);
      for (const next of graph.get(file) ?? []) {
        const s = state.get(next);
        if (s === "open") cycles.push([...path.slice(path.indexOf(next)), next].map((f) => relative(join(ROOT, "runtime"), f)).join(" -> "));
        else if (s === undefined && graph.has(next)) visit(next);
      }
      path.pop();
      state.set(file, "done");
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it("codegen never imports the runtime", () => {
    const problems: string[] = [];
    for (const file of files(join(ROOT, "codegen"))) {
      for (const spec of imports(file)) {
        if (spec === "protocast" || spec.startsWith("protocast/") || spec.includes("/runtime/")) problems.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("the check sees a violation when there is one", () => {
    // A guard against a rule that can never fail: the parser must find real imports.
    const sample = files(join(ROOT, "runtime", "server")).flatMap(imports);
    expect(sample.some((s) => s.startsWith("../wire/"))).toBe(true);
    expect(folderOf(join(ROOT, "runtime", "client", "x.ts"))).toBe("client");
  });
});
