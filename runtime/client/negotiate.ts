import type { Transport } from "../transport/transport.js";
import { openHttpTransport } from "./http-transport.js";
import type { ResolvedConnectOptions, TransportKind } from "./options.js";
import { openWebSocket } from "./websocket-transport.js";

/**
 * Chooses the transport: the one that worked last first, then the others in the configured
 * order. A WebSocket that does not open in time counts as blocked (a proxy may swallow the
 * upgrade without answering), and is closed if it opens later.
 */
export class TransportNegotiator {
  /** The kind that opened last; tried first next time. */
  preferred: TransportKind | undefined;

  constructor(private readonly o: ResolvedConnectOptions) {}

  async open(url: string, token: string | undefined): Promise<{ transport: Transport; kind: TransportKind | "custom" }> {
    const custom = this.o.customTransport;
    if (custom !== undefined) return { transport: await custom(url, token), kind: "custom" };
    const order = [...this.o.transports].sort((a, b) => (a === this.preferred ? -1 : b === this.preferred ? 1 : 0));
    let last: unknown = new Error("no transport configured");
    for (const kind of order) {
      try {
        const transport = kind === "websocket" ? await this.webSocket(url, token) : await openHttpTransport(url, token, this.o.fetch);
        this.preferred = kind;
        return { transport, kind };
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }

  /** Opens a WebSocket within the open timeout. */
  webSocket(url: string, token: string | undefined): Promise<Transport> {
    const giveUp = new AbortController();
    const opening = openWebSocket(this.o.webSocket, url, token, giveUp.signal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`WebSocket not open after ${this.o.webSocketOpenTimeoutMs} ms`));
        giveUp.abort();
      }, this.o.webSocketOpenTimeoutMs);
      opening.then(
        (t) => {
          clearTimeout(timer);
          resolve(t);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }
}
