// The conformance cases of `npm run conformance`, in the suite: every case against the
// conformance service (PROTOCOL.md section 18), all in one server, several at a time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConformanceServer, type RunningConformanceServer } from "../../examples/conformance/server.js";
import { cases } from "./cases.js";
import { formatResult, runCases, type CaseResult } from "./run-cases.js";

describe("protocast.v1 conformance (PROTOCOL.md section 18)", () => {
  let server: RunningConformanceServer;
  let results: CaseResult[] = [];

  beforeAll(async () => {
    server = await startConformanceServer({ port: 0 });
    results = await runCases(server.url, { concurrency: 12 });
  }, 60_000);
  afterAll(() => server.close());

  it.each(cases.map((c, i) => [`§${c.section} ${c.title}`, i] as const))("%s", (_, i) => {
    const r = results[i]!;
    expect(r.ok, formatResult(r)).toBe(true);
  });
});
