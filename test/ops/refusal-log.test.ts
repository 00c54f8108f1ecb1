/** Refused attempts are logged by default, at a bounded rate, and never with the credential. */
import { describe, expect, it, vi } from "vitest";
import { Code, ProtocastError } from "protocast/node";
import { defaultRefusalLog, type RefusalRecord } from "../../runtime/server/refusal-log.js";
import { startHarness } from "../support/harness.js";
import { outcomeOf, upgradeRequest } from "../hostile/raw-ws.js";

const record = (i: number): RefusalRecord => ({
  event: "auth_failure",
  transport: "websocket",
  status: 401,
  closeCode: 4502,
  reason: "unauthenticated",
  message: `attempt ${i}`,
  remoteAddress: "10.0.0.1",
  path: "/protocast",
});

describe("defaultRefusalLog", () => {
  it("writes one line per refusal, at most perWindow a window, then says how many it left out", () => {
    let now = 0;
    const lines: string[] = [];
    const log = defaultRefusalLog({ write: (l) => lines.push(l), perWindow: 3, windowMs: 1_000, now: () => now });
    for (let i = 0; i < 5; i++) log(record(i));
    expect(lines).toEqual([
      "protocast: refused websocket connection from 10.0.0.1 to /protocast: unauthenticated (attempt 0) [close 4502]",
      "protocast: refused websocket connection from 10.0.0.1 to /protocast: unauthenticated (attempt 1) [close 4502]",
      "protocast: refused websocket connection from 10.0.0.1 to /protocast: unauthenticated (attempt 2) [close 4502]",
    ]);
    now = 1_000;
    log({ ...record(5), closeCode: 0, status: 400, reason: "no_subprotocol", message: "" });
    expect(lines.slice(3)).toEqual([
      "protocast: 2 more refused connection attempts in the last 1 s were not logged (pass createServer a logger to see each)",
      "protocast: refused websocket connection from 10.0.0.1 to /protocast: no_subprotocol [HTTP 400]",
    ]);
  });
});

describe("a server without a logger", () => {
  it("warns on the console about a refused upgrade: reason, address, path; never the credential", async () => {
    const secret = "very-secret-credential-4711";
    const h = await startHarness({
      authenticate: () => {
        throw new ProtocastError(Code.Unauthenticated, "unknown credential");
      },
    });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const r = await outcomeOf(h.port, upgradeRequest({ path: `/protocast?token=${secret}`, headers: [["Authorization", `Bearer ${secret}`]] }));
      expect(r.code).toBe(4502);
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines).toContain("protocast: refused websocket connection from 127.0.0.1 to /protocast: unauthenticated (unknown credential) [close 4502]");
      expect(lines.join("\n")).not.toContain(secret);
    } finally {
      warn.mockRestore();
      await h.close();
    }
  });
});
