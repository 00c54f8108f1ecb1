import type { ServiceDefinition } from "../service/define.js";
import type { Connection } from "./connection.js";
import { outboxCalls, recoveredCalls } from "./outbox-recovered.js";

/**
 * Builds the typed client of a service on a connection. Several services may share one
 * connection; an application may also open one connection per feature. A service with
 * exactly-once or idempotent at-least-once calls also gets `$recovered()`: the outbox's
 * recovered calls of this service, decoded (see Outbox.recovered).
 */
export function createClient<C>(service: ServiceDefinition<unknown, C, unknown, unknown>, connection: Connection): C {
  const client: Record<string, unknown> = {};
  for (const def of service.byPath.values()) {
    switch (def.kind) {
      case "call":
        client[def.localName] = (request: never, options?: never) => connection.call(def, request, options);
        break;
      case "channel":
        client[def.localName] = (params: object, options?: never) => connection.subscribe(def, params, options);
        if (def.rules.clientPublish) {
          const name = `publish${def.localName.charAt(0).toUpperCase()}${def.localName.slice(1)}`;
          client[name] = (params: object, message: never, options?: never) => connection.publish(def, params, message, options);
        }
        break;
      case "event":
        client[def.localName] = () => connection.events(def);
        break;
    }
  }
  // Named with a "$" so that it can never meet a method's name (proto names have no "$").
  const kept = outboxCalls(Object.values(service.calls));
  if (kept.length > 0) client["$recovered"] = () => recoveredCalls(connection.outbox, kept);
  return client as C;
}
