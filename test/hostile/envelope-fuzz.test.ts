/**
 * Damaged envelopes (truncated, bit-flipped, with bytes inserted, pure noise, and the
 * classic decoder attacks), each sent after a valid Hello over a real socket, to a server in
 * its own process. Every one must get a documented answer: close 4500 (undecodable or
 * unexpected), close 1009 (too big), an Error frame, or normal handling. The server process
 * must survive, its memory stay bounded, and a normal client still be served afterwards.
 * See fuzz-driver.ts for how each envelope's answer is told apart.
 *
 * `npm test` sends 2,000, the deep run (`npm run test:deep`) 25,000, `npm run fuzz` 100,000;
 * PROTOCAST_FUZZ_ENVELOPES sets any other count.
 * The decoders themselves get many more damaged inputs, without a socket, from the codec
 * properties (test/codegen/codec.property.test.ts, test/wire).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { runs } from "../support/depth.js";
import { until } from "../support/wait.js";
import { describeReport, runEnvelopeFuzz } from "./fuzz-driver.js";

interface ChildReport {
  rss: number;
  rssMax: number;
  cpuMs: number;
  stats: { connections: number; sessions: number; channels: number; counters: Record<string, unknown> };
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
const TOTAL = Number(process.env["PROTOCAST_FUZZ_ENVELOPES"] ?? runs(2_000, 25_000));

describe(`${TOTAL.toLocaleString("en")} damaged envelopes`, () => {
  let child: ChildProcess;
  let port = 0;
  let exited: { code: number | null; signal: string | null } | undefined;

  const ask = (): Promise<ChildReport> =>
    new Promise((resolve, reject) => {
      if (exited !== undefined) return reject(new Error(`server process exited: ${JSON.stringify(exited)}`));
      child.once("message", (m) => resolve(m as ChildReport));
      child.send("report");
    });

  beforeAll(async () => {
    child = fork(fileURLToPath(new URL("./fuzz-server.ts", import.meta.url)), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.on("exit", (code, signal) => (exited = { code, signal }));
    port = await new Promise<number>((resolve, reject) => {
      child.once("message", (m) => resolve((m as { port: number }).port));
      child.once("exit", () => reject(new Error("server process exited before listening")));
    });
  });

  afterAll(async () => {
    if (exited !== undefined) return;
    const gone = new Promise((r) => child.once("exit", r));
    child.send("close");
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    if (exited === undefined) child.kill();
  });

  it("answers every one with 4500, 1009, an Error or normal handling", { timeout: 150_000 }, async () => {
    // Warm up, so that the baseline includes what any server holds once it has served a little.
    await runEnvelopeFuzz({ port, total: runs(500, 2_000), parallel: 16, batch: 6, deadlineMs: 20_000, seed: 7, maxEnvelopeBytes: 65_536, expectedCloses: new Set([4500, 1009]) });
    const before = await ask();
    const cpuBefore = process.cpuUsage();

    const report = await runEnvelopeFuzz({
      port,
      total: TOTAL,
      parallel: 24,
      // Most damaged envelopes close their connection, so a short batch wastes little.
      batch: 6,
      // About 50 s on an idle two-core machine; the margin is for a machine shared with benchmarks.
      deadlineMs: 120_000,
      seed: 42,
      maxEnvelopeBytes: 65_536,
      expectedCloses: new Set([4500, 1009]),
    });
    const after = await ask();
    const cpu = process.cpuUsage(cpuBefore);
    console.log(
      `${describeReport(report)}\nserver process RSS MiB: before ${mib(before.rss)}, max during ${mib(after.rssMax)}, after ${mib(after.rss)}` +
        `\nCPU s: server ${((after.cpuMs - before.cpuMs) / 1000).toFixed(1)}, client ${((cpu.user + cpu.system) / 1e6).toFixed(1)}`,
    );

    expect(report.unexpected.slice(0, 10)).toEqual([]);
    expect(report.handled).toBe(TOTAL);
    const closes = Object.keys(report.outcomes).filter((k) => k.startsWith("closed"));
    expect(closes.sort()).toEqual(["closed 1009", "closed 4500"]);
    expect(report.outcomes["kept open"]).toBeGreaterThan(TOTAL / 100);
    expect(exited).toBeUndefined();
    // Connections come and go at about a thousand a second; what they leave behind must not pile up.
    expect(after.rssMax - before.rss).toBeLessThan(150 * 2 ** 20);

    // A normal client is served, and nothing of the attack is left once its connections are gone.
    const conn = connect(`ws://127.0.0.1:${port}/protocast`, { reconnect: false });
    const reply = await createClient(ChatService, conn).sendMessage({ roomId: "health", text: "still here" });
    expect(reply.messageId).toMatch(/^anonymous-/);
    await conn.close();
    let left = await ask();
    await until(async () => (left = await ask()).stats.connections + left.stats.sessions === 0, "the server to let go of every connection").catch(() => undefined);
    expect({ connections: left.stats.connections, sessions: left.stats.sessions, channels: left.stats.channels }).toEqual({ connections: 0, sessions: 0, channels: 0 });
  });
});
