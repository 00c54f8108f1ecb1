import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { connect } from "protocast/node";
import { startSoakServer } from "./soak-server.js";
import { p50p99, publishUntil, type Delivery } from "./traffic.js";

export interface LossFigures extends Delivery {
  readonly percent: number;
  readonly cuts: number;
  readonly reconnects: number;
  readonly reconnectP50: number;
  readonly reconnectP99: number;
}

const root = fileURLToPath(new URL("../..", import.meta.url));

function run(args: readonly string[]): { ok: boolean; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: "utf8" });
  return { ok: r.status === 0, err: `${r.stderr ?? ""}${r.error?.message ?? ""}`.trim() };
}

/** Why packet loss cannot be set up here, or undefined when it can (root, ip netns, nft). */
export function lossUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root for ip netns";
  if (!run(["sh", "-c", "command -v ip && command -v nft && command -v ss"]).ok) return "needs ip, nft and ss (apt-get install -y iproute2 nftables)";
  const probe = `pcprobe${randomBytes(3).toString("hex")}`;
  const made = run(["ip", "netns", "add", probe]);
  if (!made.ok) return `ip netns not permitted: ${made.err}`;
  run(["ip", "netns", "del", probe]);
  return undefined;
}

/**
 * Readers in a network namespace of their own, joined to this one by a veth pair that drops
 * `percent` % of the packets each way (nftables numgen), their connections cut every 2 s; the
 * publisher and the server stay on this side, unharmed. Cleans up whatever happens.
 */
export async function runLoss(percent: number, seconds: number, brokerUrl: string | undefined): Promise<LossFigures> {
  const tag = randomBytes(3).toString("hex");
  const ns = `pcsoak${tag}`;
  const [outer, inner] = [`pcs0${tag}`, `pcs1${tag}`];
  const subnet = `10.213.${1 + (parseInt(tag, 16) % 250)}`;
  const drop = (dev: string): string => `add table inet ${ns}; add chain inet ${ns} out { type filter hook output priority 0; }; add rule inet ${ns} out oifname "${dev}" numgen random mod 100 < ${percent} counter drop`;
  const steps = [
    ["ip", "netns", "add", ns],
    ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
    ["ip", "link", "set", inner, "netns", ns],
    ["ip", "addr", "add", `${subnet}.1/24`, "dev", outer],
    ["ip", "link", "set", outer, "up"],
    ["ip", "netns", "exec", ns, "ip", "addr", "add", `${subnet}.2/24`, "dev", inner],
    ["ip", "netns", "exec", ns, "ip", "link", "set", inner, "up"],
    ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ["nft", drop(outer)],
    ["ip", "netns", "exec", ns, "nft", drop(inner)],
  ];
  const cleanup = (): void => {
    run(["nft", "delete", "table", "inet", ns]);
    run(["ip", "link", "del", outer]);
    run(["ip", "netns", "del", ns]);
  };
  let soak: Awaited<ReturnType<typeof startSoakServer>> | undefined;
  try {
    for (const s of steps) {
      const r = run(s);
      if (!r.ok) throw new Error(`${s.join(" ")}: ${r.err}`);
    }
    soak = await startSoakServer(`${subnet}.1`, brokerUrl);
    const rooms = ["loss-a", "loss-b"].map((r) => `${r}-${tag}`);
    const url = `ws://${subnet}.1:${soak.port}/protocast`;
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", "test/soak/loss-clients.ts", url, rooms.join(","), "10"], {
      cwd: root,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines = createInterface({ input: child.stdout! });
    const next = (): Promise<string> => new Promise((resolve, reject) => {
      lines.once("line", resolve);
      child.once("exit", (code) => reject(new Error(`loss clients exited with ${code}`)));
    });
    if ((await next()) !== "ready") throw new Error("loss clients did not start");
    const acked = new Map(rooms.map((r) => [r, [] as string[]]));
    const publisher = connect(url, { token: "publisher" });
    let stop = false;
    const publishing = publishUntil(publisher, "p", rooms, 10, () => stop, acked);
    await new Promise((r) => setTimeout(r, seconds * 1_000));
    stop = true;
    await publishing;
    await publisher.close();
    child.stdin!.write(`${JSON.stringify({ acked: Object.fromEntries(acked) })}\n`);
    const result = JSON.parse(await next()) as Delivery & { cuts: number; reconnectMs: number[] };
    const { p50, p99 } = p50p99(result.reconnectMs);
    const { reconnectMs, ...rest } = result;
    return { ...rest, percent, reconnects: reconnectMs.length, reconnectP50: p50, reconnectP99: p99 };
  } finally {
    await soak?.close();
    cleanup();
  }
}
