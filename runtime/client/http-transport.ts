import { RECORD_CLOSE, RECORD_ENVELOPE, RecordReader, decodeClose, encodeRecord } from "../transport/records.js";
import type { Transport, TransportHandler } from "../transport/transport.js";
import { errorFromClose } from "../errors/close-reason.js";
import type { ProtocastError } from "../errors/protocast-error.js";
import { RECORDS_TYPE, TRANSPORT_HEADER } from "../wire/protocol.js";
import { errorFromSocketFailure, errorFromStatus, safeUrl } from "./failures.js";

/** Largest record accepted from the server: the protocol's envelope limit. */
const MAX_RECORD = 64 * 1024;

/** The fetch this transport needs; the platform's by default. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Maps a ws:// or wss:// URL to the http:// or https:// base of the fallback endpoints. */
export function httpBase(url: string): string {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  u.search = "";
  u.hash = "";
  return u.toString().replace(/\/$/, "");
}

/**
 * Opens the HTTP fallback transport (PROTOCOL.md section 14): a streamed GET response carries
 * the server's envelopes, POSTs carry the client's, one at a time so that they stay in order.
 * Resolves once the server accepted the stream; rejects with the HTTP status otherwise.
 */
export async function openHttpTransport(url: string, token: string | undefined, fetchImpl: FetchLike = globalThis.fetch.bind(globalThis)): Promise<Transport> {
  const base = httpBase(url);
  const abort = new AbortController();
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  let res: Response;
  try {
    res = await fetchImpl(`${base}/stream`, { headers, signal: abort.signal, cache: "no-store", credentials: "same-origin" });
  } catch (e) {
    throw errorFromSocketFailure(e, safeUrl(`${base}/stream`));
  }
  const id = res.headers.get(TRANSPORT_HEADER);
  if (!res.ok || res.body === null || id === null) {
    const refusal = await readRefusal(res);
    abort.abort();
    throw refusal;
  }
  return new HttpTransport(base, id, res.body, abort, headers, fetchImpl);
}

/**
 * The error of a refused stream. A Protocast server sends, with the HTTP status, the record
 * that ends a stream (close code and reason, as a WebSocket refusal would close); anything
 * else (a proxy, an older server) is judged by its status alone.
 */
async function readRefusal(res: Response): Promise<ProtocastError> {
  if (res.ok || !(res.headers.get("content-type") ?? "").startsWith(RECORDS_TYPE)) return errorFromStatus(res.status);
  try {
    const body = new Uint8Array(await res.arrayBuffer());
    const record = new RecordReader(1024).push(body)[0];
    if (record !== undefined && record.type === RECORD_CLOSE) {
      const { code, reason } = decodeClose(record.payload);
      return errorFromClose(code, reason);
    }
  } catch {
    /* an unreadable body: the status still says what happened */
  }
  return errorFromStatus(res.status);
}

class HttpTransport implements Transport {
  private handler: TransportHandler | undefined;
  private closed = false;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private posting = false;

  constructor(
    private readonly base: string,
    private readonly id: string,
    private readonly body: ReadableStream<Uint8Array>,
    private readonly abortStream: AbortController,
    private readonly headers: Record<string, string>,
    private readonly fetchImpl: FetchLike,
  ) {}

  get bufferedAmount(): number {
    return this.queued;
  }

  attach(handler: TransportHandler): void {
    this.handler = handler;
    void this.read();
  }

  private async read(): Promise<void> {
    const reader = this.body.getReader();
    const records = new RecordReader(MAX_RECORD);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const r of records.push(value)) {
          if (r.type === RECORD_ENVELOPE) this.handler?.onMessage(r.payload);
          else if (r.type === RECORD_CLOSE) {
            const { code, reason } = decodeClose(r.payload);
            this.finish(code, reason);
            return;
          }
        }
      }
    } catch {
      /* the stream broke: a dropped link */
    }
    this.finish(1006, "");
  }

  send(data: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(encodeRecord(RECORD_ENVELOPE, data));
    this.queued += data.byteLength;
    if (!this.posting) {
      this.posting = true;
      // Everything sent in this turn goes in one POST.
      queueMicrotask(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue;
      this.queue = [];
      const size = batch.reduce((n, b) => n + b.byteLength, 0);
      const body = new Uint8Array(size);
      let at = 0;
      for (const b of batch) {
        body.set(b, at);
        at += b.byteLength;
      }
      try {
        const res = await this.fetchImpl(`${this.base}/send?t=${encodeURIComponent(this.id)}`, {
          method: "POST",
          headers: { ...this.headers, "content-type": RECORDS_TYPE },
          body,
          cache: "no-store",
          credentials: "same-origin",
        });
        if (!res.ok) throw new Error(`POST refused (${res.status})`);
      } catch {
        // A lost POST is a lost link: the session layer resends after the resume.
        this.abort();
        return;
      } finally {
        this.queued -= size - batch.length * 5;
      }
    }
    this.posting = false;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    const url = `${this.base}/stream?t=${encodeURIComponent(this.id)}&code=${code}`;
    void this.fetchImpl(url, { method: "DELETE", headers: this.headers }).catch(() => undefined);
    this.abortStream.abort();
    this.finish(code, reason);
  }

  abort(): void {
    this.abortStream.abort();
    this.finish(1006, "");
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.handler?.onClose(code, reason);
  }
}
