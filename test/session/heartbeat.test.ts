// The heartbeat both sides use, driven by a fake clock: no timers, only times.
import { describe, expect, it } from "vitest";
import { Heartbeat } from "../../runtime/session/heartbeat.js";

const times = { intervalMs: 25_000, timeoutMs: 10_000 };

describe("Heartbeat, pinging side (server)", () => {
  it("pings every interval and closes when a Ping stays unanswered for the timeout", () => {
    const h = new Heartbeat("pinger", times, 0);
    expect(h.check(24_999)).toBe("none");
    expect(h.check(25_000)).toBe("ping");
    expect(h.awaitingPong).toBe(true);
    expect(h.check(30_000)).toBe("none"); // one Ping at a time
    expect(h.check(34_999)).toBe("none");
    expect(h.check(35_000)).toBe("timeout");
  });

  it("any frame answers the Ping; the next one comes an interval after the last", () => {
    const h = new Heartbeat("pinger", times, 0);
    expect(h.check(25_000)).toBe("ping");
    h.ponged(26_000);
    expect(h.awaitingPong).toBe(false);
    expect(h.check(49_999)).toBe("none");
    expect(h.check(50_000)).toBe("ping");
  });
});

describe("Heartbeat, watching side (client)", () => {
  it("gives up after interval + timeout of silence, and any frame restarts the count", () => {
    const h = new Heartbeat("watcher", times, 0);
    expect(h.silenceLimitMs).toBe(35_000);
    expect(h.check(35_000)).toBe("none");
    h.heard(30_000);
    expect(h.check(65_000)).toBe("none");
    expect(h.check(65_001)).toBe("timeout");
  });

  it("takes the server's times from Welcome and starts counting again", () => {
    const h = new Heartbeat("watcher", times, 0);
    h.reset({ intervalMs: 1_000, timeoutMs: 500 }, 100_000);
    expect(h.check(101_500)).toBe("none");
    expect(h.check(101_501)).toBe("timeout");
    expect(h.check(101_501)).toBe("timeout"); // the watcher never pings
  });
});
