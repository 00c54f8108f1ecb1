import type { IncomingMessage, ServerResponse } from "node:http";
import { randomId } from "../server/ids.js";
import type { ServerCore } from "../server/server-core.js";
import { RECORD_ENVELOPE, RecordReader, encodeCloseRecord, encodeRecord } from "../transport/records.js";
import type { Transport, TransportHandler } from "../transport/transport.js";
import { STATUS_TEXT, Refusal, admit, type AdmissionOptions } from "./admission.js";

/** Response header that names the stream a client's POSTs belong to. */
export const TRANSPORT_HEADER = "protocast-transport";

/**
 * The HTTP fallback for clients whose WebSocket upgrade is blocked: GET {path}/stream opens a
 * long response that carries server-to-client records; POST {path}/send?t=<id> carries
 * client-to-server records; DELETE {path}/stream?t=<id> ends it. Admission (origin,
 * credential, authenticate) is the WebSocket path's; everything above the transport is shared.
 */
export interface HttpFallback {
  /** Handles a request under {path}/ and returns true, or returns false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

export function createHttpFallback(core: ServerCore, path: string, admission: AdmissionOptions, onRefuse: (status: number, reason: string, remoteAddress: string) => void): HttpFallback {
  const streams = new Map<string, HttpStreamTransport>();
  const maxRecord = core.limits.maxEnvelopeBytes;
  // A POST carries a batch of envelopes; it may hold as many bytes as the send buffer mark.
  const maxPost = Math.max(core.limits.sendHighWaterMark, maxRecord + 5);

  const answer = (res: ServerResponse, status: number, reason: string): void => {
    if (res.headersSent) return;
    const extra: Record<string, string> = status === 401 ? { "www-authenticate": "Bearer" } : status === 503 ? { "retry-after": "1" } : {};
    res.writeHead(status, { "content-type": "text/plain", "cache-control": "no-store", ...extra }).end(`${STATUS_TEXT[status] ?? ""}: ${reason}\n`);
  };

  const open = (req: IncomingMessage, res: ServerResponse): void => {
    const remoteAddress = req.socket.remoteAddress ?? "";
    admit(req, [], admission).then(
      (principal) => {
        if (res.destroyed || req.destroyed) return;
        const id = randomId(18);
        res.writeHead(200, {
          "content-type": "application/vnd.protocast.v1+records",
          "cache-control": "no-store",
          // Proxies that buffer responses would hold frames back; ask them not to.
          "x-accel-buffering": "no",
          [TRANSPORT_HEADER]: id,
          "access-control-expose-headers": TRANSPORT_HEADER,
        });
        res.flushHeaders();
        const t = new HttpStreamTransport(res, () => streams.delete(id));
        streams.set(id, t);
        core.accept(t, principal, remoteAddress);
      },
      (e: unknown) => {
        const r = e instanceof Refusal ? e : new Refusal(401, String(e));
        onRefuse(r.status, r.message, remoteAddress);
        answer(res, r.status, r.message);
      },
    );
  };

  const send = (req: IncomingMessage, res: ServerResponse, t: HttpStreamTransport): void => {
    const reader = new RecordReader(maxRecord);
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.byteLength;
      try {
        if (size > maxPost) throw new RangeError(`a POST may carry at most ${maxPost} bytes`);
        for (const r of reader.push(chunk)) if (r.type === RECORD_ENVELOPE) t.deliver(r.payload);
      } catch (e) {
        failed = true;
        answer(res, 413, (e as Error).message);
        // Same rule as an oversize WebSocket frame: the connection ends with 1009.
        t.close(1009, "record over the limit");
        req.resume();
      }
    });
    req.on("end", () => {
      if (!failed) res.writeHead(204, { "cache-control": "no-store" }).end();
    });
  };

  return {
    handle(req, res) {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (url.pathname !== `${path}/stream` && url.pathname !== `${path}/send`) return false;
      if (url.pathname === `${path}/stream` && req.method === "GET") {
        open(req, res);
        return true;
      }
      const t = streams.get(url.searchParams.get("t") ?? "");
      if (t === undefined) {
        // The stream is gone (closed, or held by another node): the client reconnects.
        answer(res, 404, "no such stream");
        return true;
      }
      if (url.pathname === `${path}/send` && req.method === "POST") send(req, res, t);
      else if (url.pathname === `${path}/stream` && req.method === "DELETE") {
        // The client's close code decides, as on a WebSocket, whether its session waits for a
        // resume (4000-4499, 1001) or ends (1000).
        const code = Number(url.searchParams.get("code") ?? 1000);
        t.close(code === 1001 || (code >= 4000 && code <= 4999) ? code : 1000, "client closed");
        res.writeHead(204).end();
      } else answer(res, 405, "use GET or DELETE on /stream, POST on /send");
      return true;
    },
    close() {
      for (const t of streams.values()) t.abort();
      streams.clear();
    },
  };
}

/** One fallback stream as a Transport: writes go to the long response, reads come from POSTs. */
class HttpStreamTransport implements Transport {
  private handler: TransportHandler | undefined;
  private closed = false;
  private corked = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly forget: () => void,
  ) {
    res.on("close", () => this.finish(1006, ""));
    res.on("error", () => undefined);
  }

  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  attach(handler: TransportHandler): void {
    this.handler = handler;
    const onDrain = handler.onDrain;
    if (onDrain !== undefined) this.res.on("drain", () => onDrain.call(handler));
  }

  deliver(envelope: Uint8Array): void {
    if (!this.closed) this.handler?.onMessage(envelope);
  }

  send(data: Uint8Array): void {
    if (this.closed) return;
    // Coalesce the writes of one event-loop turn, as the WebSocket transport does.
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    this.res.write(encodeRecord(RECORD_ENVELOPE, data));
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.res.end(encodeCloseRecord(code, reason));
    this.finish(code, reason);
  }

  abort(): void {
    this.res.destroy();
    this.finish(1006, "");
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.forget();
    this.handler?.onClose(code, reason);
  }
}
