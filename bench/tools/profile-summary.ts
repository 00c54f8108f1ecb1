/**
 * Summarises V8 CPU profiles (.cpuprofile, from node --cpu-prof): self time per function and
 * per source file, busiest first. Idle time and the garbage collector are listed apart.
 *
 *   npx tsx bench/tools/profile-summary.ts [--top N] [--callers NAME] FILE.cpuprofile...
 *
 * Several files are summed, e.g. all rounds of one scenario. --callers lists where the self
 * time of functions named NAME comes from (their callers' call sites).
 */
import { readFileSync } from "node:fs";
import { SourceMap, type SourceMapping, type SourceMapPayload } from "node:module";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly children?: readonly number[];
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const argv = process.argv.slice(2);
let top = 25;
let callersOf: string | undefined;
const files: string[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--top") top = Number(argv[++i]);
  else if (argv[i] === "--callers") callersOf = argv[++i];
  else files.push(argv[i]!);
}
if (files.length === 0) {
  console.error("usage: tsx bench/tools/profile-summary.ts [--top N] FILE.cpuprofile...");
  process.exit(2);
}

const cwd = process.cwd();
const maps = new Map<string, SourceMap | undefined>();

/** The source map next to a compiled file (bench/.build/...), if there is one. */
function sourceMap(path: string): SourceMap | undefined {
  if (!maps.has(path)) {
    let map: SourceMap | undefined;
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8")) as SourceMapPayload);
    } catch {
      map = undefined;
    }
    maps.set(path, map);
  }
  return maps.get(path);
}

/** "file:line" of a call frame, in the TypeScript source when a source map says where. */
function locate(f: ProfileNode["callFrame"]): { file: string; line: number } {
  const path = f.url.startsWith("file://") ? fileURLToPath(f.url) : f.url;
  const found = path.startsWith("/") ? sourceMap(path)?.findEntry(f.lineNumber, f.columnNumber) : undefined;
  const entry = found !== undefined && "originalSource" in found ? (found as SourceMapping) : undefined;
  if (entry !== undefined) {
    const source = entry.originalSource.startsWith("file://") ? fileURLToPath(entry.originalSource) : resolve(dirname(path), entry.originalSource);
    return { file: relative(cwd, source), line: entry.originalLine + 1 };
  }
  return { file: path.startsWith("/") ? relative(cwd, path) : path, line: f.lineNumber + 1 };
}

const byFunction = new Map<string, number>();
const byCaller = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parents = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n);
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined || dt <= 0) continue;
    const f = node.callFrame;
    const at = f.url === "" ? { file: "(native)", line: 0 } : locate(f);
    const file = at.file;
    const key = `${f.functionName || "(anonymous)"}  ${file}${f.url === "" ? "" : `:${at.line}`}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    if (callersOf !== undefined && f.functionName === callersOf) {
      const p = parents.get(node.id);
      const at = p === undefined || p.callFrame.url === "" ? undefined : locate(p.callFrame);
      const caller = p === undefined ? "(none)" : `${p.callFrame.functionName || "(anonymous)"}  ${at === undefined ? "(native)" : `${at.file}:${at.line}`}`;
      byCaller.set(caller, (byCaller.get(caller) ?? 0) + dt);
    }
    total += dt;
  }
}

const idle = byFunction.get("(idle)  (native)") ?? 0;
const busy = total - idle;
const pct = (us: number): string => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
const ms = (us: number): string => `${(us / 1000).toFixed(1).padStart(9)} ms`;
console.log(`${files.length} profile(s): ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy (percentages are of busy time)\n`);
console.log("self time by function");
for (const [k, v] of [...byFunction].filter(([k]) => k !== "(idle)  (native)").sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(v)} ${pct(v)}  ${k}`);
}
console.log("\nself time by file");
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  if (k === "(native)") console.log(`${ms(v - idle)} ${pct(v - idle)}  (native: gc, program, syscalls)`);
  else console.log(`${ms(v)} ${pct(v)}  ${k}`);
}
if (callersOf !== undefined) {
  console.log(`\nself time of ${callersOf} by caller`);
  for (const [k, v] of [...byCaller].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
}
