/**
 * Command loop of a cross-node server process: reports its port, and on node A (or the single
 * node) publishes stamped messages on command, either as a burst (plan.batch per event-loop
 * turn, as fast as it goes) or paced (one every intervalMs, for latency).
 */
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { nowUs, type CrossServerCommand, type CrossServerReport } from "../lib/cross-node.js";
import { nowNs } from "../lib/messages.js";
import { onCommand, report } from "../lib/proc.js";

export interface CrossNode {
  readonly port: number;
  /** Publishes one message stamped with `us` to the channel. */
  publish(us: number): void;
}

const send = (m: CrossServerReport): void => report(m);

export function serveNode(node: CrossNode, stop: () => Promise<void>): void {
  onCommand<CrossServerCommand>(async (command) => {
    if (command.type === "burst") {
      const startNs = nowNs();
      let seq = 0;
      while (seq < command.messages) {
        const end = Math.min(command.messages, seq + command.batch);
        for (; seq < end; seq++) node.publish(nowUs());
        if (seq < command.messages) await nextTurn();
      }
      send({ type: "burst-done", startNs, lastPublishNs: nowNs() });
    } else if (command.type === "paced") {
      // Fixed schedule from the start, so that a late timer does not shift the ones after it.
      const t0 = performance.now();
      for (let i = 0; i < command.messages; i++) {
        const wait = t0 + i * command.intervalMs - performance.now();
        if (wait > 0) await sleep(wait);
        node.publish(nowUs());
      }
      send({ type: "paced-done" });
    }
  }, stop);
  send({ type: "ready", port: node.port });
}
