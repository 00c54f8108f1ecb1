/** Connection logs through pino, from a real server with real clients. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { pinoConnectionLogger } from "../../runtime/adapters/ops/pino-logger.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { openSession } from "../hostile/raw-session.js";
import { exchange, outcomeOf, upgradeRequest } from "../hostile/raw-ws.js";
import { captureLogs, type CapturedLogs } from "./log-capture.js";

const INFO = 30;
const WARN = 40;

describe("pino connection logs", () => {
  let h: Harness;
  let logs: CapturedLogs;

  beforeAll(async () => {
    logs = captureLogs();
    h = await startHarness({
      logger: pinoConnectionLogger(logs.logger),
      authenticate: (req) => {
        if (req.token !== "alice") throw new ProtocastError(Code.Unauthenticated, "unknown credential");
        return { id: "alice", scopes: ["chat"] };
      },
    });
    h.server.implement(ChatService, { sendMessage: (req) => ({ messageId: req.text }), listRooms: () => ({ rooms: [] }) });
  });
  afterAll(() => h.close());

  const linesOf = (event: string) => logs.lines.filter((l) => l["event"] === event);

  it("writes connect and disconnect with client id, principal, code, duration and bytes", async () => {
    const conn = h.client({ token: "alice" });
    await createClient(ChatService, conn).sendMessage({ roomId: "r", text: "hi" });
    const sessionId = conn.sessionId;
    await conn.close();
    await until(() => linesOf("disconnect").some((l) => l["sessionId"] === sessionId), "the disconnect line");
    const connect = linesOf("connect").find((l) => l["sessionId"] === sessionId)!;
    expect(connect).toMatchObject({ level: INFO, msg: "connect", principal: "alice", remoteAddress: "127.0.0.1", resumed: false });
    expect(connect["connectionId"]).toEqual(expect.any(String));
    const disconnect = linesOf("disconnect").find((l) => l["sessionId"] === sessionId)!;
    expect(disconnect).toMatchObject({ level: INFO, msg: "disconnect", principal: "alice", connectionId: connect["connectionId"], code: 1000 });
    expect(disconnect["durationMs"]).toEqual(expect.any(Number));
    expect(disconnect["bytesIn"] as number).toBeGreaterThan(0);
    expect(disconnect["bytesOut"] as number).toBeGreaterThan(0);
    expect(typeof disconnect["time"]).toBe("number");
  });

  it("writes an auth failure as a warning with its close code, reason and path, without the credential", async () => {
    const before = linesOf("auth_failure").length;
    expect(await outcomeOf(h.port, upgradeRequest({ path: "/protocast?x=1", headers: [["Authorization", "Bearer mallory"]] }))).toMatchObject({ status: 101, code: 4502 });
    await until(() => linesOf("auth_failure").length > before, "the auth_failure line");
    expect(linesOf("auth_failure").at(-1)).toMatchObject({
      level: WARN,
      transport: "websocket",
      status: 401,
      closeCode: 4502,
      reason: "unauthenticated",
      message: "unknown credential",
      remoteAddress: "127.0.0.1",
      path: "/protocast",
    });
    expect(logs.text()).not.toContain("mallory");
  });

  it("writes other refusals as upgrade_refused warnings: unknown path, unsupported version, no subprotocol", async () => {
    const before = linesOf("upgrade_refused").length;
    expect(await outcomeOf(h.port, upgradeRequest({ path: "/elsewhere" }))).toMatchObject({ status: 101, code: 4504 });
    expect(await outcomeOf(h.port, upgradeRequest({ protocols: ["protocast.v9"] }))).toMatchObject({ status: 101, code: 4501 });
    expect((await exchange(h.port, upgradeRequest({ protocols: [] }))).status).toBe(400);
    await until(() => linesOf("upgrade_refused").length >= before + 3, "three upgrade_refused lines");
    const [path, version, none] = linesOf("upgrade_refused").slice(-3);
    expect(path).toMatchObject({ level: WARN, closeCode: 4504, reason: "unknown_path", path: "/elsewhere" });
    expect(version).toMatchObject({ level: WARN, closeCode: 4501, reason: "unsupported_version", path: "/protocast" });
    expect(none).toMatchObject({ level: WARN, status: 400, closeCode: 0, reason: "no_subprotocol" });
  });

  it("writes a protocol violation, and its disconnect, as warnings", async () => {
    const s = await openSession(h.port, { headers: [["Authorization", "Bearer alice"]] });
    s.sendBytes(Uint8Array.from([0xff, 0xff]));
    expect((await s.raw.ended).code).toBe(4500);
    await until(() => linesOf("disconnect").some((l) => l["code"] === 4500), "the disconnect line");
    expect(linesOf("protocol_violation").at(-1)).toMatchObject({ level: WARN, principal: "alice", error: expect.stringContaining("invalid_argument") });
    expect(linesOf("disconnect").find((l) => l["code"] === 4500)).toMatchObject({ level: WARN });
  });
});

describe("pinoConnectionLogger redaction", () => {
  it("never writes a field named like a credential, at any depth, nor a token in a URL", () => {
    const logs = captureLogs();
    const log = pinoConnectionLogger(logs.logger);
    log({
      event: "limit",
      connectionId: "c1",
      sessionId: "s1",
      principal: "p",
      remoteAddress: "127.0.0.1",
      token: "SECRET-1",
      resumeToken: "SECRET-2",
      resume_token: "SECRET-3",
      headers: { Authorization: "Bearer SECRET-4", cookie: "sid=SECRET-5", "Set-Cookie": "SECRET-6", nested: { access_token: "SECRET-7" } },
      url: "/protocast?room=a&token=SECRET-8&x=1",
      list: [{ password: "SECRET-9" }],
      limit: "rate",
    });
    const text = logs.text();
    expect(text).not.toMatch(/SECRET/);
    expect(logs.lines[0]).toMatchObject({ level: WARN, msg: "limit", limit: "rate", url: "/protocast?room=a&token=[redacted]&x=1", headers: { Authorization: "[redacted]" } });
  });
});
