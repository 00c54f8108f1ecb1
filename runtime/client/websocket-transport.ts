import { shouldReconnect } from "../errors/close-codes.js";
import { errorFromClose } from "../errors/close-reason.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { errorFromSocketFailure, safeUrl } from "./failures.js";
import type { Transport, TransportHandler } from "../transport/transport.js";
import { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX } from "../wire/protocol.js";

/** The subset of the WHATWG WebSocket that the client uses; the `ws` package matches it too. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Opens a WebSocket: the browser's own, or `ws` in Node. */
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export { SUBPROTOCOL, TOKEN_PROTOCOL_PREFIX };

/** Encodes a credential as a subprotocol value: the one header a browser lets a page set. */
export function tokenProtocol(token: string): string {
  const bytes = new TextEncoder().encode(token);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return TOKEN_PROTOCOL_PREFIX + btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** How long a socket whose 101 selected another version waits for the server's close. */
const VERSION_CLOSE_WAIT_MS = 1_000;

/**
 * Opens a WebSocket transport. Resolves once open; rejects with a ProtocastError saying why
 * when it cannot open: the close code and reason of a server that refused, the HTTP status or
 * socket error where the platform shows them (Node), a plain "could not connect" where it
 * does not (browsers). A refusal after 101 arrives later, as the transport's close.
 */
export function openWebSocket(factory: WebSocketFactory, url: string, token: string | undefined, signal?: AbortSignal): Promise<Transport> {
  const protocols = token === undefined ? [SUBPROTOCOL] : [SUBPROTOCOL, tokenProtocol(token)];
  const target = safeUrl(url);
  let ws: WebSocketLike;
  try {
    ws = factory(url, protocols);
  } catch (e) {
    // The URL was checked by connect(): what throws here is the platform (no WebSocket, a
    // blocked one), which the HTTP fallback may get round.
    return Promise.reject(new ProtocastError(Code.Unavailable, `cannot open a WebSocket to ${target}: ${e instanceof Error ? e.message : String(e)}`, { reason: "websocket_failed", cause: e }));
  }
  // Browsers deliver Blobs by default; ws in Node delivers Buffers, which need no copy.
  if (ws.binaryType === "blob") ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    // Giving up must close the socket still opening: a browser opens one WebSocket per host
    // at a time, so an abandoned one would hold back every later attempt.
    signal?.addEventListener("abort", () => {
      ws.onopen = ws.onclose = null;
      ws.close(1000, "gave up");
      reject(new ProtocastError(Code.Unavailable, `WebSocket to ${target} abandoned`, { reason: "open_abandoned" }));
    }, { once: true });
    let failure: unknown;
    ws.onopen = () => {
      if (ws.protocol === SUBPROTOCOL) {
        resolve(new WebSocketTransport(ws));
        return;
      }
      // A server refusing a version it does not speak selects it and closes with 4501 at
      // once: wait a moment for that close, which says more than a bare mismatch.
      const selected = ws.protocol;
      const timer = setTimeout(() => {
        ws.onclose = null;
        ws.close(1002, "subprotocol not offered");
        reject(new ProtocastError(Code.Unimplemented, `the server at ${target} selected ${selected === "" ? "no subprotocol" : selected}, not ${SUBPROTOCOL}`, { reason: "unsupported_version" }));
      }, VERSION_CLOSE_WAIT_MS);
      ws.onclose = (ev) => {
        clearTimeout(timer);
        reject(errorFromClose(ev.code, ev.reason));
      };
    };
    ws.onerror = (ev) => {
      failure = ev;
    };
    ws.onclose = (ev) => {
      // 1006 is no close frame at all: the socket error (Node) or nothing (browsers) says more.
      if (ev.code === 1006 || ev.code === 1005 || ev.code === 0) reject(errorFromSocketFailure(failure, target));
      else reject(errorFromClose(ev.code, ev.reason));
    };
  });
}

class WebSocketTransport implements Transport {
  constructor(private readonly ws: WebSocketLike) {}

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  attach(handler: TransportHandler): void {
    let closed = false;
    this.ws.onmessage = (ev) => {
      const d = ev.data;
      if (d instanceof ArrayBuffer) handler.onMessage(new Uint8Array(d));
      else if (ArrayBuffer.isView(d)) handler.onMessage(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      else this.close(1003, "text frames are not part of protocast.v1");
    };
    this.ws.onclose = (ev) => {
      if (closed) return;
      closed = true;
      handler.onClose(ev.code, ev.reason);
    };
  }

  send(data: Uint8Array): void {
    if (this.ws.readyState === 1) this.ws.send(data);
  }

  close(code: number, reason: string): void {
    // Browsers accept only 1000 and 3000-4999 from an application; other codes throw. Keep
    // their meaning: reconnect (4000) or not (4500).
    const allowed = code === 1000 || (code >= 3000 && code <= 4999);
    if (this.ws.readyState <= 1) this.ws.close(allowed ? code : shouldReconnect(code) ? 4000 : 4500, reason);
  }

  abort(): void {
    // A browser WebSocket has no abort; closing is the closest it offers.
    this.close(1000, "");
  }
}
