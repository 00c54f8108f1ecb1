import { createMemoryBroker, type Broker, type BrokerEvent } from "protocast";
import { describeBrokerConformance, type GapBroker, type TestNode } from "./conformance.js";

// The in-memory broker is one process: its "nodes" are views of one shared instance, and
// losing history means replacing that instance (a restarted process gets a new epoch).
let shared: Broker = createMemoryBroker();

function memoryNode(): TestNode {
  const stops = new Set<() => void>();
  const broker: GapBroker = {
    publish: (channel, payload, options, metadata) => shared.publish(channel, payload, options, metadata),
    async subscribe(channel: string, listener: (event: BrokerEvent) => void) {
      const stop = await shared.subscribe(channel, listener);
      stops.add(stop);
      return () => {
        stops.delete(stop);
        stop();
      };
    },
    position: (channel) => shared.position(channel),
    history: (channel, since, limit) => shared.history(channel, since, limit),
    close: () => {
      for (const stop of stops) stop();
      stops.clear();
      return Promise.resolve();
    },
  };
  return { broker, close: () => broker.close() };
}

describeBrokerConformance({
  name: "memory",
  node: () => Promise.resolve(memoryNode()),
  loseHistory: () => {
    shared = createMemoryBroker();
    return Promise.resolve();
  },
  reportsGaps: false,
  propertyRuns: 30,
  cleanup: () => Promise.resolve(),
});
