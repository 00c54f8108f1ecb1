// The plugin prints the runtime's envelope codec from protocast/v1/envelope.proto: the
// committed file is what the plugin prints today, and schemas the plain codec cannot hold are
// refused with the field named instead of being printed wrong.
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bufGenerate, ROOT } from "./buf-generate.js";

const OUTPUT = "protocast/v1/envelope_codec.ts";

describe("envelope codec generation", () => {
  it("prints the committed generated/protocast/v1/envelope_codec.ts from envelope.proto", { timeout: 60_000 }, async () => {
    const staged = await mkdtemp(join(tmpdir(), "protocast-envelope-"));
    try {
      await mkdir(join(staged, "protocast", "v1"), { recursive: true });
      await cp(join(ROOT, "proto", "protocast", "v1", "envelope.proto"), join(staged, "protocast", "v1", "envelope.proto"));
      const result = await bufGenerate(staged);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const committed = await readFile(join(ROOT, "generated", OUTPUT), "utf8");
      expect(result.files.get(OUTPUT)).toBe(committed);
    } finally {
      await rm(staged, { recursive: true, force: true });
    }
  });

  it.each([
    ["map", /Envelope\.headers: maps are not supported/],
    ["recursive", /protocast\.v1\.Node: it contains itself \(Envelope > Node > Node\)/],
    ["optional", /Envelope\.seq: explicit presence/],
    ["int64", /Envelope\.delta: scalar type INT64 is not supported/],
  ])("refuses a schema with %s fields", { timeout: 60_000 }, async (fixture, message) => {
    const result = await bufGenerate(`wire/${fixture}`);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(result.files.has(OUTPUT)).toBe(false);
  });
});

