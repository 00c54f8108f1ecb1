import { Code, codeName } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Transport } from "../transport/transport.js";
import { isDefinitive, isFinal } from "./failures.js";
import { openHttpTransport } from "./http-transport.js";
import type { ResolvedConnectOptions, TransportKind } from "./options.js";
import { openWebSocket } from "./websocket-transport.js";

/** A WebSocket that opened before and then times out is given this many more tries first. */
const PROVEN_WEBSOCKET_TIMEOUTS = 3;
/** The open timeout grows to this many times the slowest recent open, up to the cap. */
const OPEN_TIME_FACTOR = 4;
const OPEN_TIMEOUT_CAP_MS = 15_000;
const RECENT_OPENS = 5;

/**
 * Chooses the transport: the one that worked last first, then the others in the configured
 * order. A WebSocket that does not open in time counts as blocked (a proxy may swallow the
 * upgrade without answering), and is closed if it opens later. A refusal by the server itself
 * (a close code, a refused credential) is final for the attempt: no other transport is tried.
 *
 * A slow network is not a proxy: the open timeout grows with the open times seen (four times
 * the slowest of the last five, up to 15 s), and once a WebSocket has opened, a timeout is
 * taken for a bad moment of the network rather than a block, for three attempts in a row,
 * before the fallback is tried. On the fallback, the upgrade probe moves back when it can.
 */
export class TransportNegotiator {
  /** The kind that opened last; tried first next time. */
  preferred: TransportKind | undefined;
  /** How long the last few WebSocket opens took, in ms. */
  private readonly opens: number[] = [];
  /** WebSocket open timeouts in a row since one last opened. */
  private timeoutsInRow = 0;

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
        if (kind === "websocket" && err.reason === "open_timeout" && this.opens.length > 0 && ++this.timeoutsInRow <= PROVEN_WEBSOCKET_TIMEOUTS) {
          // This network has carried a WebSocket: back off and try it again before falling back.
          throw err;
        }
        failures.push(err);
      }
    }
    // Report the failure that says most: one retrying cannot fix, else the first tried.
    throw failures.find(isFinal) ?? failures[0] ?? new ProtocastError(Code.InvalidArgument, "no transport configured", { reason: "no_transport" });
  }

  /** The time a WebSocket gets to open: the configured one, or more on a network seen to be slow. */
  get openTimeoutMs(): number {
    const slowest = this.opens.length === 0 ? 0 : Math.max(...this.opens);
    return Math.max(this.o.webSocketOpenTimeoutMs, Math.min(OPEN_TIMEOUT_CAP_MS, OPEN_TIME_FACTOR * slowest));
  }

  /** Opens a WebSocket within the open timeout. */
  webSocket(url: string, token: string | undefined): Promise<Transport> {
    const giveUp = new AbortController();
    const started = this.o.now();
    const timeoutMs = this.openTimeoutMs;
    const opening = openWebSocket(this.o.webSocket, url, token, giveUp.signal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ProtocastError(Code.Unavailable, `WebSocket not open after ${timeoutMs} ms`, { reason: "open_timeout" }));
        giveUp.abort();
      }, timeoutMs);
      opening.then(
        (t) => {
          clearTimeout(timer);
          this.opens.push(this.o.now() - started);
          if (this.opens.length > RECENT_OPENS) this.opens.shift();
          this.timeoutsInRow = 0;
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
