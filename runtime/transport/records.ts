/**
 * Framing of the HTTP fallback transport (PROTOCOL.md section 14). A byte stream carries
 * records: one type byte, a 4-byte big-endian length, then that many bytes. Type 1 holds one
 * envelope; type 2 ends the stream and holds a 2-byte close code and a UTF-8 reason.
 */
export const RECORD_ENVELOPE = 1;
export const RECORD_CLOSE = 2;
const HEADER = 5;

export function encodeRecord(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + payload.byteLength);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, HEADER);
  return out;
}

export function encodeCloseRecord(code: number, reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason.slice(0, 120));
  const payload = new Uint8Array(2 + text.byteLength);
  new DataView(payload.buffer).setUint16(0, code);
  payload.set(text, 2);
  return encodeRecord(RECORD_CLOSE, payload);
}

export function decodeClose(payload: Uint8Array): { code: number; reason: string } {
  if (payload.byteLength < 2) return { code: 1005, reason: "" };
  const code = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint16(0);
  return { code, reason: new TextDecoder().decode(payload.subarray(2)) };
}

/**
 * Reassembles records from chunks cut anywhere. A record longer than `maxRecordBytes` is an
 * error thrown before its bytes are buffered.
 */
export class RecordReader {
  private buf = new Uint8Array(0);

  constructor(private readonly maxRecordBytes: number) {}

  /** Appends a chunk and returns the records it completes, in order. */
  push(chunk: Uint8Array): { type: number; payload: Uint8Array }[] {
    let data: Uint8Array;
    if (this.buf.byteLength === 0) {
      data = chunk;
    } else {
      data = new Uint8Array(this.buf.byteLength + chunk.byteLength);
      data.set(this.buf);
      data.set(chunk, this.buf.byteLength);
    }
    const out: { type: number; payload: Uint8Array }[] = [];
    let at = 0;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    while (data.byteLength - at >= HEADER) {
      const type = data[at]!;
      const len = view.getUint32(at + 1);
      if (type !== RECORD_ENVELOPE && type !== RECORD_CLOSE) throw new RangeError(`unknown record type ${type}`);
      if (len > this.maxRecordBytes) throw new RangeError(`record of ${len} bytes is over the limit of ${this.maxRecordBytes}`);
      if (data.byteLength - at - HEADER < len) break;
      out.push({ type, payload: data.slice(at + HEADER, at + HEADER + len) });
      at += HEADER + len;
    }
    this.buf = at === data.byteLength ? new Uint8Array(0) : data.slice(at);
    return out;
  }
}
