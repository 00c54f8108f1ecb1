// The README's examples are code a user copies: its TypeScript blocks must compile against the
// public entries, and its .proto example must be the one the repository generates from.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Project, ts } from "ts-morph";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** Fenced blocks of one language, with the line each starts on. */
function blocks(lang: string): { readonly line: number; readonly code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = README.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```" + lang) continue;
    const start = i + 1;
    while (++i < lines.length && lines[i] !== "```");
    out.push({ line: start + 1, code: lines.slice(start, i).join("\n") + "\n" });
  }
  return out;
}

// What the examples leave to the application, declared so that everything else is checked.
const PRELUDE = `
declare function verify(token: string | undefined): Promise<{ id: string; expiresAt: number } | undefined>;
declare function getFreshToken(): string;
declare const http: import("node:http").Server;
`;

describe("README", () => {
  it("has TypeScript examples", () => {
    expect(blocks("ts").length).toBeGreaterThanOrEqual(4);
  });

  it("TypeScript examples compile against the public entries", () => {
    const project = new Project({ tsConfigFilePath: join(ROOT, "tsconfig.json"), skipAddingFilesFromTsConfig: true });
    const files = blocks("ts").map((b) => project.createSourceFile(join(ROOT, `readme-example-line-${b.line}.ts`), `${b.code}\n${PRELUDE}\nexport {};\n`, { overwrite: true }));
    const problems = files.flatMap((f) =>
      f.getPreEmitDiagnostics().map((d) => `${f.getBaseName()}:${d.getLineNumber() ?? "?"}: ${ts.flattenDiagnosticMessageText(d.compilerObject.messageText, "\n")}`),
    );
    expect(problems).toEqual([]);
  }, 120_000);

  it("the .proto example is proto/acme/todo/v1/todo.proto, which npm run gen compiles", () => {
    const [proto] = blocks("proto");
    expect(proto?.code).toBe(readFileSync(join(ROOT, "proto/acme/todo/v1/todo.proto"), "utf8"));
  });
});
