/**
 * A chat server in a child process, for attacks that need the second core and their own
 * measurements: the parent sees the process die if anything goes uncaught, and the RSS it
 * reports is the server's alone. Run with `node --import tsx`; talks to its parent over IPC.
 *
 *   child -> parent  { port }                              once listening
 *   parent -> child  "report"                             child answers { rss, rssMax, cpuMs, stats }
 *   parent -> child  "close"                              child closes the server and exits
 */
import { startChat } from "./chat-server.js";

const send = (message: unknown): void => {
  process.send?.(message);
};

// The default authenticate: anonymous principals with every scope, each its own principal, so
// that the per-principal connection limit stays out of the way. Every in-band refresh is
// accepted: a refused one closes with 4502 only after the refresh hook has answered, which
// can land after later probes and would blur which envelope closed the connection (refusals
// are covered by test/ops/canary.test.ts).
const h = await startChat({ reauthenticate: (_token, current) => current });
let rssMax = process.memoryUsage().rss;
const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 100);
process.on("message", (m) => {
  if (m === "report") {
    const rss = process.memoryUsage().rss;
    const s = h.server.stats();
    const cpu = process.cpuUsage();
    send({ rss, rssMax: Math.max(rssMax, rss), cpuMs: (cpu.user + cpu.system) / 1000, stats: { connections: s.connections, sessions: s.sessions, channels: s.channels, counters: s.counters } });
  } else if (m === "close") {
    clearInterval(sampler);
    void h.close().then(() => process.exit(0));
  }
});
// The parent going away must not leave a server behind.
process.on("disconnect", () => process.exit(0));
send({ port: h.port });
