// The upgrade decision on plain descriptions, no socket: every branch, and the order of the
// checks (PROTOCOL.md 2.4), including how each refusal is answered.
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { decideUpgrade, type UpgradeDecision, type UpgradeDescription, type UpgradePolicy } from "../../runtime/server/upgrade.js";

const policy: UpgradePolicy = { path: "/protocast", maxHeaders: 100, websocket: true, closing: false };
const request: UpgradeDescription = { pathname: "/protocast", offered: ["protocast.v1"], headerCount: 8, alone: true };

/** The decision in a form that compares well: kind, answer, status, close code, reason. */
function summary(d: UpgradeDecision): unknown {
  if (d.kind !== "refuse") return d.kind;
  return { answer: d.answer, status: d.refusal.status, closeCode: d.refusal.closeCode, reason: d.refusal.reason, admission: d.refusal.admission };
}

const decide = (r: Partial<UpgradeDescription> = {}, p: Partial<UpgradePolicy> = {}): unknown => summary(decideUpgrade({ ...request, ...r }, { ...policy, ...p }));

describe("decideUpgrade", () => {
  it("admits a request for its path that offers protocast.v1", () => {
    expect(decide()).toBe("admit");
    expect(decide({ offered: ["protocast.v1", "protocast.token.YWJj"] })).toBe("admit");
    expect(decide({ offered: ["", "protocast.v2", "protocast.v1"] })).toBe("admit");
    expect(decide({ headerCount: 100 })).toBe("admit");
  });

  it("leaves other paths to other upgrade listeners when it is not alone", () => {
    expect(decide({ pathname: "/other", alone: false })).toBe("pass");
    // Whatever else is wrong with the request: it is not ours to judge.
    expect(decide({ pathname: "/other", alone: false, headerCount: 5_000, offered: [""] }, { closing: true, websocket: false })).toBe("pass");
  });

  it("refuses other paths with 404 when alone: in HTTP without a version, by close with one", () => {
    expect(decide({ pathname: "/other", offered: [""] })).toEqual({ answer: "http", status: 404, closeCode: CloseCode.NotFound, reason: "unknown_path", admission: false });
    expect(decide({ pathname: "/other" })).toEqual({ answer: "close", status: 404, closeCode: CloseCode.NotFound, reason: "unknown_path", admission: false });
    expect(decide({ pathname: "/other", offered: ["protocast.v7"] })).toMatchObject({ answer: "close", reason: "unknown_path" });
  });

  it("names at most 60 characters of the unknown path", () => {
    const d = decideUpgrade({ ...request, pathname: `/${"x".repeat(200)}` }, policy);
    expect(d.kind === "refuse" && d.refusal.message).toBe(`no Protocast endpoint at /${"x".repeat(59)}`);
  });

  it("checks the path before the headers", () => {
    expect(decide({ pathname: "/other", headerCount: 101 })).toMatchObject({ reason: "unknown_path" });
  });

  it("refuses more headers than maxHeaders with 431 in HTTP, whatever was offered", () => {
    expect(decide({ headerCount: 101 })).toEqual({ answer: "http", status: 431, closeCode: 0, reason: "too_many_headers", admission: false });
    expect(decide({ headerCount: 11, offered: [""] }, { maxHeaders: 10 })).toMatchObject({ answer: "http", status: 431 });
    const d = decideUpgrade({ ...request, headerCount: 11 }, { ...policy, maxHeaders: 10 });
    expect(d.kind === "refuse" && d.refusal.message).toBe("more than 10 request headers");
  });

  it("refuses every upgrade with a plain 403 when WebSocket is turned off, after the header count", () => {
    expect(decide({}, { websocket: false })).toEqual({ answer: "http", status: 403, closeCode: 0, reason: "websocket_disabled", admission: false });
    expect(decide({ offered: [""] }, { websocket: false })).toMatchObject({ answer: "http", reason: "websocket_disabled" });
    expect(decide({ headerCount: 101 }, { websocket: false })).toMatchObject({ reason: "too_many_headers" });
  });

  it("refuses a request that offers no Protocast version with 400 in HTTP", () => {
    const noVersion = { answer: "http", status: 400, closeCode: 0, reason: "no_subprotocol", admission: false };
    expect(decide({ offered: [""] })).toEqual(noVersion);
    expect(decide({ offered: ["chat", "protocast.token.YWJj"] })).toEqual(noVersion);
    // Near misses are not versions.
    expect(decide({ offered: ["protocast.v1x", "Protocast.v1", "protocast.v"] })).toEqual(noVersion);
  });

  it("refuses a version it does not speak by closing with 4501", () => {
    expect(decide({ offered: ["protocast.v2"] })).toEqual({ answer: "close", status: 400, closeCode: CloseCode.UnsupportedVersion, reason: "unsupported_version", admission: false });
    expect(decide({ offered: ["protocast.v2"] }, { closing: true })).toMatchObject({ reason: "unsupported_version" });
  });

  it("refuses by closing with 4007 while the server shuts down", () => {
    expect(decide({}, { closing: true })).toEqual({ answer: "close", status: 503, closeCode: CloseCode.TryLater, reason: "shutting_down", admission: false });
  });
});
