// Admission on plain requests, no socket: origin, where the credential comes from, what the
// authenticate hook sees, and how what it throws (or its silence) becomes a refusal.
import { fc, test } from "@fast-check/vitest";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { Code } from "../../runtime/errors/code.js";
import { ProtocastError } from "../../runtime/errors/protocast-error.js";
import { Refusal, admit, asRefusal, originAllowed, tokenOfProtocol, type AdmissionOptions, type AdmissionRequest, type UpgradeRequest } from "../../runtime/server/admission.js";
import type { Principal } from "../../runtime/server/context.js";

const principal: Principal = { id: "p", scopes: [] };
const request = (r: Partial<AdmissionRequest> = {}): AdmissionRequest => ({ headers: {}, url: "/protocast", remoteAddress: "10.0.0.1", ...r });

/** Admits with a hook that records what it saw; resolves to that, or to the refusal. */
async function seen(req: AdmissionRequest, offered: readonly string[] = [], o: Partial<AdmissionOptions> = {}): Promise<UpgradeRequest | Refusal> {
  let got: UpgradeRequest | undefined;
  const options: AdmissionOptions = { authenticate: (r) => ((got = r), principal), allowedOrigins: undefined, allowQueryToken: false, timeoutMs: 1_000, ...o };
  return admit(req, offered, options).then(
    () => got!,
    (e: unknown) => e as Refusal,
  );
}

describe("originAllowed", () => {
  it("with an allow-list, wants the Origin on it", () => {
    const list = ["https://app.example.com"];
    expect(originAllowed({ origin: "https://app.example.com" }, list)).toBe(true);
    expect(originAllowed({ origin: "https://evil.example.com" }, list)).toBe(false);
    expect(originAllowed({}, list)).toBe(false);
  });

  it("without one, lets requests without cookies through and holds cookie requests to the server's own origin", () => {
    expect(originAllowed({}, undefined)).toBe(true);
    expect(originAllowed({ origin: "https://evil.example.com" }, undefined)).toBe(true);
    expect(originAllowed({ cookie: "s=1", host: "app.example.com", origin: "https://app.example.com" }, undefined)).toBe(true);
    expect(originAllowed({ cookie: "s=1", host: "app.example.com", origin: "https://evil.example.com" }, undefined)).toBe(false);
    expect(originAllowed({ cookie: "s=1", host: "app.example.com" }, undefined)).toBe(false);
    expect(originAllowed({ cookie: "s=1", host: "app.example.com", origin: "null" }, undefined)).toBe(false);
    expect(originAllowed({ cookie: "s=1", host: "app.example.com", origin: "not a url" }, undefined)).toBe(false);
  });
});

describe("admit", () => {
  afterEach(() => vi.useRealTimers());

  it("gives the hook the path without the query, the origin, the headers and the remote address", async () => {
    const headers = { origin: "https://app.example.com", "x-tenant": "acme" };
    const r = (await seen(request({ headers, url: "/protocast?token=abc&x=1" }))) as UpgradeRequest;
    expect(r).toEqual({ headers, url: "/protocast", origin: "https://app.example.com", token: undefined, remoteAddress: "10.0.0.1" });
    expect(r.headers).toBe(headers);
  });

  it("takes the credential from Authorization: Bearer, then the token subprotocol, then (opt-in) the query", async () => {
    const bearer = request({ headers: { authorization: "bEaReR  abc.def  " }, url: "/protocast?token=q" });
    expect(((await seen(bearer, ["protocast.v1", "protocast.token.c3Vi"], { allowQueryToken: true })) as UpgradeRequest).token).toBe("abc.def");
    expect(((await seen(request({ headers: { authorization: "Basic eDp5" } }), ["protocast.v1", "protocast.token.c3Vi"])) as UpgradeRequest).token).toBe("sub");
    expect(((await seen(request({ url: "/protocast?token=q" }), ["protocast.v1"], { allowQueryToken: true })) as UpgradeRequest).token).toBe("q");
    expect(((await seen(request({ url: "/protocast?token=q" }), ["protocast.v1"])) as UpgradeRequest).token).toBeUndefined();
  });

  it("refuses a foreign origin before the hook runs, naming at most 80 characters of it", async () => {
    const authenticate = vi.fn(() => principal);
    const origin = `https://${"e".repeat(100)}.example.com`;
    const r = await admit(request({ headers: { origin } }), [], { authenticate, allowedOrigins: ["https://app.example.com"], allowQueryToken: false, timeoutMs: 1_000 }).catch((e: unknown) => e as Refusal);
    expect(r).toMatchObject({ status: 403, closeCode: CloseCode.Forbidden, reason: "origin_not_allowed", message: `Origin ${origin.slice(0, 80)} is not allowed`, admission: true });
    expect(authenticate).not.toHaveBeenCalled();
    const missing = (await seen(request(), [], { allowedOrigins: ["https://app.example.com"] })) as Refusal;
    expect(missing.message).toBe("the request has no Origin header");
  });

  it("turns what the hook throws into a refusal by its code, keeping its own snake_case reason", async () => {
    const refusalFor = (e: unknown): Promise<Refusal> =>
      admit(request({ headers: { authorization: "Bearer s3cret-token" } }), [], { authenticate: () => Promise.reject(e), allowedOrigins: undefined, allowQueryToken: false, timeoutMs: 1_000 }).then(
        () => expect.fail("admitted"),
        (r: unknown) => r as Refusal,
      );
    expect(await refusalFor(new ProtocastError(Code.PermissionDenied, "banned"))).toMatchObject({ status: 403, closeCode: CloseCode.Forbidden, reason: "permission_denied", message: "banned" });
    expect(await refusalFor(new ProtocastError(Code.Unavailable, "db down", { reason: "db_down" }))).toMatchObject({ status: 503, closeCode: CloseCode.TryLater, reason: "db_down" });
    expect(await refusalFor(new ProtocastError(Code.Unauthenticated, "expired", { reason: "Not Snake" }))).toMatchObject({ status: 401, closeCode: CloseCode.Unauthorized, reason: "unauthenticated" });
    expect(await refusalFor(new Error("bad token s3cret-token"))).toMatchObject({ status: 401, reason: "unauthenticated", message: "bad token [credential]" });
  });

  it("refuses with 503 / 4007 auth_timeout when the hook does not answer in time", async () => {
    vi.useFakeTimers();
    const pending = admit(request(), [], { authenticate: () => new Promise<Principal>(() => undefined), allowedOrigins: undefined, allowQueryToken: false, timeoutMs: 250 }).catch((e: unknown) => e as Refusal);
    await vi.advanceTimersByTimeAsync(250);
    expect(await pending).toMatchObject({ status: 503, closeCode: CloseCode.TryLater, reason: "auth_timeout", message: "authentication took over 250 ms", admission: true });
  });
});

describe("asRefusal", () => {
  it("keeps a Refusal and makes anything else an unauthenticated one", () => {
    const r = new Refusal(403, CloseCode.Forbidden, "x", "y");
    expect(asRefusal(r)).toBe(r);
    expect(asRefusal(new Error("boom"))).toMatchObject({ status: 401, closeCode: CloseCode.Unauthorized, reason: "unauthenticated", message: "Error: boom" });
  });
});

describe("tokenOfProtocol", () => {
  const base64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

  it("reads what the client writes", () => {
    expect(tokenOfProtocol(base64url(new TextEncoder().encode("héllo wörld ✓ 🙂")))).toBe("héllo wörld ✓ 🙂");
  });

  // The hook has always been given Node's reading of the subprotocol: the same for any input.
  test.prop([fc.uint8Array({ maxLength: 64 })])("decodes any bytes as Buffer does, BOM and bad UTF-8 included", (bytes) => {
    const encoded = base64url(bytes);
    expect(tokenOfProtocol(encoded)).toBe(Buffer.from(encoded, "base64url").toString("utf8"));
  });

  test.prop([fc.string({ unit: fc.constantFrom(..."AZaz09+/-_=. \t$%é\u{feff}".split(""), "A", "w", "8") })])("reads any text as Buffer does", (text) => {
    expect(tokenOfProtocol(text)).toBe(Buffer.from(text, "base64url").toString("utf8"));
  });

  it("reads the edge cases as Buffer does", () => {
    for (const text of ["", "Y", "YQ", "YQ=", "YQ==", "YQ=YQ", "Y=Q", "YW Jj", "YW$Jj", "YW+/", "77u_YQ", "7b-_", "8J-Y", "_w"]) {
      expect([text, tokenOfProtocol(text)]).toEqual([text, Buffer.from(text, "base64url").toString("utf8")]);
    }
  });
});
