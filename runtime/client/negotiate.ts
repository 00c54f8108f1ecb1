import { Code, codeName } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Transport } from "../transport/transport.js";
import { isDefinitive, isFinal } from "./failures.js";
import { openHttpTransport } from "./http-transport.js";
import type { ResolvedConnectOptions, TransportKind } from "./options.js";
import { openWebSocket } from "./websocket-transport.js";

/**
 * Chooses the transport: the one that worked last first, then the others in the configured
 * order. A WebSocket that does not open in time counts as blocked (a proxy may swallow the
 * upgrade without answering), and is closed if it opens later. A refusal by the server itself
 * (a close code, a refused credential) is final for the attempt: no other transport is tried.
 */
export class TransportNegotiator {
  /** The kind that opened last; tried first next time. */
  preferred: TransportKind | undefined;

  constructor(private readonly o: ResolvedConnectOptions) {}

  async open(url: string, token: string | undefined): Promise<{ transport: Transport; kind: TransportKind | "custom" }> {
    const custom = this.o.customTransport;
    if (custom !== undefined) return { transport: await custom(url, token), kind: "custom" };
    const order = [...this.o.transports].sort((a, b) => (a === this.preferred ? -1 : b === this.preferred ? 1 : 0));
    const failures: ProtocastError[] = [];
    for (const kind of order) {
      try {
        const transport = kind === "websocket" ? await this.webSocket(url, token) : await openHttpTransport(url, token, this.o.fetch);
        this.preferred = kind;
        return { transport, kind };
      } catch (e) {
        const err = ProtocastError.from(e, Code.Unavailable);
        // The server's own refusal, or a credential refused: the other transport would hear
        // the same, and trying it would only hide the answer.
        if (isDefinitive(err)) throw err;
        this.o.debug?.(`${kind} transport failed`, { code: codeName(err.code), reason: err.reason, message: err.rawMessage });
        failures.push(err);
      }
    }
    // Report the failure that says most: one retrying cannot fix, else the first tried.
    throw failures.find(isFinal) ?? failures[0] ?? new ProtocastError(Code.InvalidArgument, "no transport configured", { reason: "no_transport" });
  }

  /** Opens a WebSocket within the open timeout. */
  webSocket(url: string, token: string | undefined): Promise<Transport> {
    const giveUp = new AbortController();
    const opening = openWebSocket(this.o.webSocket, url, token, giveUp.signal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ProtocastError(Code.Unavailable, `WebSocket not open after ${this.o.webSocketOpenTimeoutMs} ms`, { reason: "open_timeout" }));
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
