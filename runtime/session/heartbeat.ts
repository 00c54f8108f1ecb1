/** What the owner of a heartbeat should do now. */
export type HeartbeatAction = "none" | "ping" | "timeout";

export interface HeartbeatTimes {
  /** Time between Pings of the pinging side. */
  readonly intervalMs: number;
  /** Time a Ping may go unanswered, on top of the interval for the watching side. */
  readonly timeoutMs: number;
}

/**
 * Liveness of one connection (PROTOCOL.md section 9), as either side sees it, with no timer
 * of its own: the owner calls `check(now)` from whatever single timer it has (the server's
 * shared tick, the client's watchdog).
 *
 * - The pinging side (the server) sends a Ping every interval and gives up when the Pong has
 *   not come within the timeout.
 * - The watching side (the client) sends nothing by itself and gives up when it has heard
 *   nothing at all (a Ping included) for interval + timeout.
 */
export class Heartbeat {
  private lastSeenAt: number;
  private lastPingAt: number;
  private pingSentAt = 0;

  constructor(
    private readonly role: "pinger" | "watcher",
    private times: HeartbeatTimes,
    now: number,
  ) {
    this.lastSeenAt = this.lastPingAt = now;
  }

  /** New times (a client learns them from Welcome or Resumed); counting starts again. */
  reset(times: HeartbeatTimes, now: number): void {
    this.times = times;
    this.lastSeenAt = this.lastPingAt = now;
    this.pingSentAt = 0;
  }

  /** Something arrived from the peer. */
  heard(now: number): void {
    this.lastSeenAt = now;
  }

  /** The Pong to the outstanding Ping arrived. */
  ponged(now: number): void {
    this.pingSentAt = 0;
    this.lastSeenAt = now;
  }

  /** Whether a Ping waits for its Pong. */
  get awaitingPong(): boolean {
    return this.pingSentAt !== 0;
  }

  /** Longest silence the watching side accepts. */
  get silenceLimitMs(): number {
    return this.times.intervalMs + this.times.timeoutMs;
  }

  /** The action due at `now`; "ping" means a Ping is sent now and its time is recorded. */
  check(now: number): HeartbeatAction {
    if (this.role === "watcher") return now - this.lastSeenAt > this.silenceLimitMs ? "timeout" : "none";
    if (this.pingSentAt !== 0) return now - this.pingSentAt >= this.times.timeoutMs ? "timeout" : "none";
    if (now - this.lastPingAt < this.times.intervalMs) return "none";
    this.pingSentAt = this.lastPingAt = now;
    return "ping";
  }
}
