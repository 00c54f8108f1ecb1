/** Close reasons and failure causes as the client reports them (PROTOCOL.md 2.4, 11.3). */
import { describe, expect, it } from "vitest";
import { Code, CloseCode } from "protocast/node";
import { errorFromClose, formatCloseReason, parseCloseReason } from "../../runtime/errors/close-reason.js";
import { errorFromSocketFailure, errorFromStatus, isFinal } from "../../runtime/client/failures.js";

describe("close reasons", () => {
  it("formats '<reason>: <message>' within 123 bytes of UTF-8, cut on a character boundary", () => {
    expect(formatCloseReason("unauthenticated")).toBe("unauthenticated");
    expect(formatCloseReason("unauthenticated", "token expired")).toBe("unauthenticated: token expired");
    const long = formatCloseReason("origin_not_allowed", "€".repeat(100));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123);
    expect(Buffer.byteLength(long)).toBeGreaterThan(120);
    expect(long).not.toContain("\uFFFD");
  });

  it("parses the reason and message; other text keeps the close code's name as reason", () => {
    expect(parseCloseReason(4502, "unauthenticated: token expired")).toEqual({ reason: "unauthenticated", message: "token expired" });
    expect(parseCloseReason(4006, "too_many_connections")).toEqual({ reason: "too_many_connections", message: "" });
    expect(parseCloseReason(1001, "server is shutting down")).toEqual({ reason: "going_away", message: "server is shutting down" });
    expect(parseCloseReason(4007, "")).toEqual({ reason: "try_later", message: "" });
    expect(parseCloseReason(3999, "Bye now")).toEqual({ reason: "closed", message: "Bye now" });
  });

  it.each([
    [CloseCode.Unauthorized, Code.Unauthenticated, true],
    [CloseCode.Forbidden, Code.PermissionDenied, true],
    [CloseCode.NotFound, Code.NotFound, true],
    [CloseCode.UnsupportedVersion, Code.Unimplemented, true],
    [CloseCode.TooManyConnections, Code.ResourceExhausted, false],
    [CloseCode.TryLater, Code.Unavailable, false],
    [CloseCode.TokenExpired, Code.Unauthenticated, false],
    [1006, Code.Unavailable, false],
  ])("close %i is %s, final: %s", (close, code, final) => {
    const e = errorFromClose(close, "some_reason: text");
    expect(e).toMatchObject({ code, reason: "some_reason", closeCode: close });
    expect(isFinal(e)).toBe(final);
  });
});

describe("failures before a socket opens", () => {
  it("maps HTTP statuses", () => {
    expect(errorFromStatus(401)).toMatchObject({ code: Code.Unauthenticated, reason: "unauthenticated" });
    expect(errorFromStatus(302)).toMatchObject({ code: Code.InvalidArgument, reason: "redirected" });
    expect(errorFromStatus(429)).toMatchObject({ code: Code.ResourceExhausted, reason: "rate_limited" });
    expect(isFinal(errorFromStatus(503))).toBe(false);
    expect(isFinal(errorFromStatus(404))).toBe(true);
  });

  it("maps Node socket errors, ws's status errors, and a browser's silence", () => {
    const err = (message: string, code?: string): Error => Object.assign(new Error(message), code === undefined ? {} : { code });
    expect(errorFromSocketFailure({ error: err("connect ECONNREFUSED", "ECONNREFUSED") }, "ws://h:1/p")).toMatchObject({ code: Code.Unavailable, reason: "connect_refused" });
    expect(errorFromSocketFailure({ error: err("Unexpected server response: 403") }, "ws://h:1/p")).toMatchObject({ code: Code.PermissionDenied, reason: "forbidden" });
    expect(errorFromSocketFailure(err("ssl3_get_record:wrong version number", "ERR_SSL_WRONG_VERSION_NUMBER"), "wss://h:1/p")).toMatchObject({ code: Code.FailedPrecondition, reason: "tls_mismatch" });
    expect(errorFromSocketFailure(err("self-signed", "DEPTH_ZERO_SELF_SIGNED_CERT"), "wss://h:1/p")).toMatchObject({ code: Code.Unavailable, reason: "tls_certificate" });
    // fetch in Node wraps the socket error.
    expect(errorFromSocketFailure(Object.assign(new TypeError("fetch failed"), { cause: err("refused", "ECONNREFUSED") }), "http://h:1/p")).toMatchObject({ reason: "connect_refused" });
    expect(errorFromSocketFailure({ type: "error" }, "ws://h:1/p")).toMatchObject({ code: Code.Unavailable, reason: "connect_failed" });
  });
});
