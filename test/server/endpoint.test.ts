// The endpoint without a platform: its options are checked in createServer's order, its
// decision follows the server's state, and refusals are counted and logged.
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { Refusal } from "../../runtime/server/admission.js";
import { createEndpoint, type Endpoint } from "../../runtime/server/endpoint.js";
import { ENDPOINT_OPTION_KEYS, type EndpointOptions } from "../../runtime/server/endpoint-options.js";
import type { RefusalRecord } from "../../runtime/server/refusal-log.js";

/** A platform with one option of its own. */
const platform = {
  keys: [...ENDPOINT_OPTION_KEYS, "extra"],
  check: (o: EndpointOptions & { extra?: unknown }) => {
    if (o.extra !== undefined && typeof o.extra !== "string") throw new Error("extra must be a string");
  },
};
const upgrade = { pathname: "/protocast", offered: ["protocast.v1"], headerCount: 5, alone: true };

describe("createEndpoint", () => {
  const open: Endpoint[] = [];
  const make = (options: EndpointOptions & { extra?: unknown }): Endpoint => {
    const e = createEndpoint(options, platform);
    open.push(e);
    return e;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.core.close(0)));
  });

  it("refuses unknown options, then runs the platform's check, then its own", () => {
    expect(() => make({ pth: "/x" } as never)).toThrow(/createServer: unknown option "pth"; did you mean "path"\?/);
    expect(() => make({ extra: 1, path: "x" })).toThrow(/extra must be a string/);
    expect(() => make({ extra: "ok", path: "x" })).toThrow(/createServer: option path must start with "\/"/);
    expect(() => make(null as never)).toThrow(/createServer: options must be an object/);
  });

  it("defaults to /protocast and both transports", () => {
    const e = make({});
    expect([e.path, e.transports]).toEqual(["/protocast", ["websocket", "http"]]);
    expect(e.decide(upgrade).kind).toBe("admit");
    expect(e.decide({ ...upgrade, headerCount: 101 }).kind).toBe("refuse");
  });

  it("decides with its own path, header bound and transports", () => {
    const e = make({ path: "/rt", maxHeaders: 3, transports: ["http"] });
    expect(e.decide({ ...upgrade, pathname: "/rt", headerCount: 4 })).toMatchObject({ refusal: { reason: "too_many_headers" } });
    expect(e.decide({ ...upgrade, pathname: "/rt", headerCount: 3 })).toMatchObject({ refusal: { reason: "websocket_disabled" } });
    expect(e.decide(upgrade)).toMatchObject({ refusal: { reason: "unknown_path" } });
  });

  it("refuses upgrades once the core is closing", async () => {
    const e = make({});
    await e.core.close(0);
    expect(e.decide(upgrade)).toMatchObject({ kind: "refuse", answer: "close", refusal: { reason: "shutting_down" } });
  });

  it("leaves refreshes unimplemented without a hook", async () => {
    await expect(make({}).core.reauthenticate("t", { id: "u", scopes: [] })).rejects.toThrow(/does not accept credential refresh/);
  });

  it("admits an anonymous principal with every scope when there is no hook", async () => {
    const e = make({});
    const a = await e.admit({ headers: {}, url: "/protocast", remoteAddress: "" }, ["protocast.v1"]);
    const b = await e.admit({ headers: {}, url: "/protocast", remoteAddress: "" }, ["protocast.v1"]);
    expect(a).toMatchObject({ scopes: ["*"], anonymous: true });
    expect(a.id).toMatch(/^anonymous-\d+$/);
    expect(b.id).not.toBe(a.id);
  });

  it("checks a refreshed credential with the authenticate hook by default", async () => {
    const seen: unknown[] = [];
    const e = make({ authenticate: (r) => (seen.push(r), { id: "u", scopes: [] }) });
    await e.core.reauthenticate("t0k3n", { id: "u", scopes: [] });
    expect(seen).toEqual([{ headers: { authorization: "Bearer t0k3n" }, url: "/protocast", origin: undefined, token: "t0k3n", remoteAddress: "" }]);
  });

  it("counts refusals by kind and logs them with the path alone", () => {
    const records: RefusalRecord[] = [];
    const e = make({ logger: (r) => records.push(r as RefusalRecord) });
    const request = { headers: { authorization: "Bearer secret" }, url: "/protocast?token=secret", remoteAddress: "10.0.0.9" };
    e.report(new Refusal(401, CloseCode.Unauthorized, "unauthenticated", "no"), "websocket", CloseCode.Unauthorized, request);
    e.report(new Refusal(431, 0, "too_many_headers", "many", false), "http", 0, request);
    expect(e.core.counters.authFailures).toBe(1);
    expect(e.core.counters.limitHits).toMatchObject({ upgrade_refused: 1 });
    expect(records).toEqual([
      { event: "auth_failure", transport: "websocket", status: 401, closeCode: CloseCode.Unauthorized, reason: "unauthenticated", message: "no", remoteAddress: "10.0.0.9", path: "/protocast" },
      { event: "upgrade_refused", transport: "http", status: 431, closeCode: 0, reason: "too_many_headers", message: "many", remoteAddress: "10.0.0.9", path: "/protocast" },
    ]);
  });
});
