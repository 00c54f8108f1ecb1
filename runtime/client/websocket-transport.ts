import { shouldReconnect } from "../errors/close-codes.js";
import type { Transport, TransportHandler } from "../transport/transport.js";

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

export const SUBPROTOCOL = "protocast.v1";
export const TOKEN_PROTOCOL_PREFIX = "protocast.token.";

/** Encodes a credential as a subprotocol value: the one header a browser lets a page set. */
export function tokenProtocol(token: string): string {
  const bytes = new TextEncoder().encode(token);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return TOKEN_PROTOCOL_PREFIX + btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Opens a WebSocket transport. Resolves once open; rejects with the close code when the
 * socket closes (or errors) before opening.
 */
export function openWebSocket(factory: WebSocketFactory, url: string, token: string | undefined, signal?: AbortSignal): Promise<Transport> {
  const protocols = token === undefined ? [SUBPROTOCOL] : [SUBPROTOCOL, tokenProtocol(token)];
  const ws = factory(url, protocols);
  // Browsers deliver Blobs by default; ws in Node delivers Buffers, which need no copy.
  if (ws.binaryType === "blob") ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    // Giving up must close the socket still opening: a browser opens one WebSocket per host
    // at a time, so an abandoned one would hold back every later attempt.
    signal?.addEventListener("abort", () => {
      ws.onopen = ws.onclose = null;
      ws.close(1000, "gave up");
      reject(new Error("WebSocket open abandoned"));
    }, { once: true });
    ws.onopen = () => {
      if (ws.protocol !== SUBPROTOCOL) {
        ws.close(4500, "subprotocol not selected");
        reject(new Error(`server did not select ${SUBPROTOCOL}`));
        return;
      }
      resolve(new WebSocketTransport(ws));
    };
    ws.onerror = () => undefined;
    ws.onclose = (ev) => reject(Object.assign(new Error(`closed before open (${ev.code})`), { closeCode: ev.code }));
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
