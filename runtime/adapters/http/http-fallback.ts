import type { IncomingMessage, ServerResponse } from "node:http";
import { CloseCode } from "../../errors/close-codes.js";
import { formatCloseReason } from "../../errors/close-reason.js";
import { asRefusal, Refusal } from "../../server/admission.js";
import type { Endpoint } from "../../server/endpoint.js";
import { randomId } from "../../server/ids.js";
import { RECORD_ENVELOPE, RecordReader, decodeClose, encodeCloseRecord, encodeRecord } from "../../transport/records.js";
import type { Transport, TransportHandler } from "../../transport/transport.js";
import { RECORDS_TYPE, TRANSPORT_HEADER } from "../../wire/protocol.js";
import { admissionRequest } from "./admission-request.js";
import { STATUS_TEXT } from "./status-text.js";

/**
 * Broker channel that carries POSTs to the node holding their stream. One channel per node,
 * not per stream, so that the broker keeps no state per stream; a stream id starts with its
 * node's id, so any node can tell where to send its POSTs.
 */
function routeChannel(streamId: string): string {
  return `protocast.transport/${streamId.slice(0, streamId.indexOf("."))}`;
}

/** A routed POST: 1 byte of stream-id length, the id, then the body's records. */
function wrapRouted(streamId: string, body: Uint8Array): Uint8Array {
  const id = new TextEncoder().encode(streamId);
  const out = new Uint8Array(1 + id.byteLength + body.byteLength);
  out[0] = id.byteLength;
  out.set(id, 1);
  out.set(body, 1 + id.byteLength);
  return out;
}

function unwrapRouted(payload: Uint8Array): { streamId: string; body: Uint8Array } {
  const n = payload[0] ?? 0;
  return { streamId: new TextDecoder().decode(payload.subarray(1, 1 + n)), body: payload.subarray(1 + n) };
}

const NO_HISTORY = { historySize: 0, historyTtlMs: 0 };

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

export function createHttpFallback(endpoint: Endpoint): HttpFallback {
  const { core, path } = endpoint;
  const onRefuse = (r: Refusal, req: IncomingMessage): void => endpoint.report(r, "http", 0, admissionRequest(req));
  const streams = new Map<string, HttpStreamTransport>();
  // With a broker shared by several nodes, POSTs reach their stream through it: no sticky
  // sessions needed. With the embedded broker there is one node and they go straight in.
  const routed = !core.ownsBroker;
  const nodeId = randomId(9);
  // This node's routing channel: POSTs for its streams that land on other nodes arrive here.
  const route: Promise<(() => void) | undefined> = routed
    ? core.broker
        .subscribe(routeChannel(`${nodeId}.`), (ev) => {
          const { streamId, body } = unwrapRouted(ev.payload);
          streams.get(streamId)?.deliverRecords(body);
        })
        .catch(() => undefined)
    : Promise.resolve(undefined);
  const maxRecord = core.limits.maxEnvelopeBytes;
  // A POST carries a batch of envelopes; it may hold as many bytes as the send buffer mark.
  const maxPost = Math.max(core.limits.sendHighWaterMark, maxRecord + 5);

  const answer = (res: ServerResponse, status: number, reason: string): void => {
    if (res.headersSent) return;
    const extra: Record<string, string> = status === 401 ? { "www-authenticate": "Bearer" } : status === 503 ? { "retry-after": "1" } : {};
    res.writeHead(status, { "content-type": "text/plain", "cache-control": "no-store", ...extra }).end(`${STATUS_TEXT[status] ?? ""}: ${reason}\n`);
  };

  /**
   * Refuses a stream with the HTTP status and, as its body, the type-2 record a WebSocket
   * refusal's close would carry: the client reads the same code and reason either way.
   */
  const refuse = (res: ServerResponse, r: Refusal): void => {
    if (res.headersSent) return;
    const extra: Record<string, string> = r.status === 401 ? { "www-authenticate": "Bearer" } : r.status === 503 ? { "retry-after": "1" } : {};
    res.writeHead(r.status, { "content-type": RECORDS_TYPE, "cache-control": "no-store", ...extra }).end(encodeCloseRecord(r.closeCode, formatCloseReason(r.reason, r.message)));
  };

  const open = (req: IncomingMessage, res: ServerResponse): void => {
    if (core.isClosing) {
      const r = new Refusal(503, CloseCode.TryLater, "shutting_down", "the server is shutting down", false);
      onRefuse(r, req);
      refuse(res, r);
      return;
    }
    const remoteAddress = req.socket.remoteAddress ?? "";
    endpoint.admit(admissionRequest(req), []).then(
      async (principal) => {
        if (res.destroyed || req.destroyed) return;
        // The node's routing channel must be live before a client learns a stream id.
        if (routed && (await route) === undefined) {
          answer(res, 503, "broker unavailable");
          return;
        }
        if (res.destroyed) return;
        const id = `${nodeId}.${randomId(18)}`;
        const t = new HttpStreamTransport(res, () => streams.delete(id));
        streams.set(id, t);
        res.writeHead(200, {
          "content-type": RECORDS_TYPE,
          "cache-control": "no-store",
          // Proxies that buffer responses would hold frames back; ask them not to.
          "x-accel-buffering": "no",
          [TRANSPORT_HEADER]: id,
          "access-control-expose-headers": TRANSPORT_HEADER,
        });
        res.flushHeaders();
        core.accept(t, principal, remoteAddress);
      },
      (e: unknown) => {
        const r = asRefusal(e);
        onRefuse(r, req);
        refuse(res, r);
      },
    );
  };

  /**
   * Reads a POST body of records, bounded, and hands it on whole: to the local stream, or
   * through the broker to whichever node holds the stream.
   */
  const send = (req: IncomingMessage, res: ServerResponse, id: string): void => {
    const reader = new RecordReader(maxRecord);
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.byteLength;
      try {
        if (size > maxPost) throw new RangeError(`a POST may carry at most ${maxPost} bytes`);
        reader.push(chunk); // validates the framing as it arrives
        chunks.push(chunk);
      } catch (e) {
        failed = true;
        answer(res, 413, (e as Error).message);
        // Same rule as an oversize WebSocket frame: the connection ends with 1009.
        streams.get(id)?.close(1009, "record over the limit");
        if (routed) void core.broker.publish(routeChannel(id), wrapRouted(id, encodeCloseRecord(1009, "record over the limit")), NO_HISTORY).catch(() => undefined);
        req.resume();
      }
    });
    req.on("end", () => {
      if (failed) return;
      const body = Buffer.concat(chunks);
      if (!routed) {
        const t = streams.get(id);
        if (t === undefined) {
          answer(res, 404, "no such stream");
          return;
        }
        t.deliverRecords(body);
        res.writeHead(204, { "cache-control": "no-store" }).end();
        return;
      }
      // With a shared broker every POST goes through it, even to the local stream: that keeps
      // the POSTs of one stream in one ordered channel whichever node the balancer picked.
      core.broker.publish(routeChannel(id), wrapRouted(id, body), NO_HISTORY).then(
        () => res.writeHead(204, { "cache-control": "no-store" }).end(),
        () => answer(res, 503, "broker unavailable"),
      );
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
      const id = url.searchParams.get("t") ?? "";
      // Stream ids are "<node>.<secret>", both base64url: anything else names no stream.
      if (!/^[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{1,64}$/.test(id)) {
        answer(res, 404, "no such stream");
        return true;
      }
      if (url.pathname === `${path}/send` && req.method === "POST") {
        send(req, res, id);
      } else if (url.pathname === `${path}/stream` && req.method === "DELETE") {
        // The client's close code decides, as on a WebSocket, whether its session waits for a
        // resume (4000-4499, 1001) or ends (1000).
        const code = Number(url.searchParams.get("code") ?? 1000);
        const close = encodeCloseRecord(code === 1001 || (code >= 4000 && code <= 4999) ? code : 1000, "client closed");
        const t = streams.get(id);
        if (t !== undefined) t.deliverRecords(close);
        else if (routed) void core.broker.publish(routeChannel(id), wrapRouted(id, close), NO_HISTORY).catch(() => undefined);
        res.writeHead(204).end();
      } else answer(res, 405, "use GET or DELETE on /stream, POST on /send");
      return true;
    },
    close() {
      for (const t of streams.values()) t.abort();
      streams.clear();
      void route.then((stop) => stop?.());
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

  private readonly records = new RecordReader(64 * 1024 * 1024);

  /** Takes the records of one POST: envelopes go up, a close record ends the stream. */
  deliverRecords(body: Uint8Array): void {
    if (this.closed) return;
    for (const r of this.records.push(body)) {
      if (r.type === RECORD_ENVELOPE) this.handler?.onMessage(r.payload);
      else {
        const { code, reason } = decodeClose(r.payload);
        this.close(code, reason);
        return;
      }
      if (this.closed) return;
    }
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
