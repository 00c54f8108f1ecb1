/**
 * A WebSocket client written by hand on node:net, for sending what a well-behaved library
 * never would: frames with the wrong mask, reserved bits, lying lengths, text opcodes,
 * floods of fragments, and handshakes that drip or carry absurd headers. Server frames are
 * parsed just enough to see messages and the close code.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

export const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Uint8Array;
  /** Default true. */
  readonly fin?: boolean;
  /** RSV1-3 as a 3-bit number (4 = RSV1). Default 0. */
  readonly rsv?: number;
  /** true: a random key (the default, as RFC 6455 requires of clients); false: unmasked. */
  readonly mask?: boolean;
  /** Length to declare instead of the payload's; the payload is still what is sent. */
  readonly declaredLength?: bigint;
}

let pool: Buffer = Buffer.alloc(0);
let poolAt = 0;

/** Random bytes from a pool: one randomBytes call per few hundred frames or handshakes. */
function randomFrom(n: number): Buffer {
  if (poolAt + n > pool.length) {
    pool = randomBytes(8192);
    poolAt = 0;
  }
  poolAt += n;
  return pool.subarray(poolAt - n, poolAt);
}

/** Encodes one frame as a client would (masked unless told otherwise). */
export function buildFrame(spec: FrameSpec): Buffer {
  const payload = spec.payload ?? new Uint8Array(0);
  const length = spec.declaredLength ?? BigInt(payload.byteLength);
  const masked = spec.mask ?? true;
  const first = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode;
  let header: Buffer;
  if (length < 126n) {
    header = Buffer.from([first, (masked ? 0x80 : 0) | Number(length)]);
  } else if (length < 65536n) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = (masked ? 0x80 : 0) | 126;
    header.writeUInt16BE(Number(length), 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = (masked ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(length, 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const key = randomFrom(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!;
  return Buffer.concat([header, key, body]);
}

/** A binary frame, masked: how every Protocast envelope travels. */
export function binaryFrame(payload: Uint8Array): Buffer {
  return buildFrame({ opcode: Opcode.Binary, payload });
}

export interface UpgradeSpec {
  readonly path?: string;
  readonly protocols?: readonly string[];
  /** Extra header lines, in order; may repeat a name. */
  readonly headers?: readonly (readonly [string, string])[];
}

/** The text of an HTTP/1.1 upgrade request. */
export function upgradeRequest(spec: UpgradeSpec = {}): string {
  const lines = [
    `GET ${spec.path ?? "/protocast"} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${randomFrom(16).toString("base64")}`,
    "Sec-WebSocket-Version: 13",
  ];
  const protocols = spec.protocols ?? ["protocast.v1"];
  if (protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(", ")}`);
  for (const [name, value] of spec.headers ?? []) lines.push(`${name}: ${value}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

export interface ServerMessage {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** How the connection ended: the close frame's code if one came, and whether TCP closed. */
export interface Ending {
  /** Code of the server's close frame; undefined when the socket closed without one. */
  readonly code: number | undefined;
  readonly reason: string;
}

/** One raw connection: the HTTP answer, then server frames as they arrive. */
export interface RawSocket {
  readonly socket: Socket;
  /** HTTP status of the answer to the upgrade request (101 on success). */
  readonly status: number;
  /** The answer's head (status line and headers) as text. */
  readonly head: string;
  /** Called for each complete data message (and ping/pong) after the 101. */
  onMessage: (m: ServerMessage) => void;
  /** Resolves when the TCP connection is gone. */
  readonly ended: Promise<Ending>;
  send(bytes: Uint8Array): void;
  /** Sends a close frame with this code, then ends the socket. */
  close(code?: number): void;
}

/**
 * Opens a TCP connection, writes `request` and resolves once the answer's head has arrived
 * (or the server closed first: status 0). Fails after `timeoutMs`.
 */
export function openRaw(port: number, request: string | Buffer = upgradeRequest(), timeoutMs = 5_000): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let buffered: Buffer = Buffer.alloc(0);
    let raw: RawSocket | undefined;
    let closeCode: number | undefined;
    let closeReason = "";
    let closeSent = false;
    let endResolve: (e: Ending) => void = () => undefined;
    const ended = new Promise<Ending>((r) => (endResolve = r));
    const parser = new FrameParser((opcode, payload) => {
      if (opcode === Opcode.Close) {
        closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        closeReason = payload.subarray(2).toString("utf8");
        // Answer the close handshake as a client must, so the server need not wait it out.
        if (!socket.destroyed && !closeSent) socket.end(buildFrame({ opcode: Opcode.Close, payload: payload.subarray(0, 2) }));
        closeSent = true;
        return;
      }
      raw?.onMessage({ opcode, payload });
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade request within ${timeoutMs} ms`));
    }, timeoutMs);
    const make = (status: number, head: string): RawSocket => ({
      socket,
      status,
      head,
      onMessage: () => undefined,
      ended,
      send: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      close(code = 1000) {
        const payload = Buffer.alloc(2);
        payload.writeUInt16BE(code);
        if (!socket.destroyed && !closeSent) socket.end(buildFrame({ opcode: Opcode.Close, payload }));
        closeSent = true;
      },
    });
    socket.on("data", (chunk: Buffer) => {
      if (raw !== undefined) {
        parser.push(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString("latin1");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      raw = make(status, head);
      clearTimeout(timer);
      resolve(raw);
      const rest = buffered.subarray(end + 4);
      if (status === 101 && rest.length > 0) parser.push(rest);
    });
    socket.on("error", () => undefined);
    socket.write(request);
    socket.on("close", () => {
      clearTimeout(timer);
      if (raw === undefined) {
        raw = make(0, buffered.toString("latin1"));
        resolve(raw);
      }
      endResolve({ code: closeCode, reason: closeReason });
    });
  });
}

/** Reassembles server frames (unmasked, possibly split across chunks). */
class FrameParser {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;

  constructor(private readonly emit: (opcode: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) return;
      const payload = b.subarray(offset, offset + length);
      this.buf = b.subarray(offset + length);
      if (opcode >= 0x8) this.emit(opcode, payload);
      else if (!fin) {
        if (opcode !== Opcode.Continuation) this.fragmentOpcode = opcode;
        this.fragments.push(payload);
      } else if (opcode === Opcode.Continuation) {
        this.fragments.push(payload);
        this.emit(this.fragmentOpcode, Buffer.concat(this.fragments));
        this.fragments = [];
      } else this.emit(opcode, payload);
    }
  }
}

/**
 * Writes `bytes` on a fresh TCP connection and collects everything the server answers until
 * it closes the connection or `timeoutMs` passes; for requests that must never be upgraded.
 */
export function exchange(port: number, bytes: string | Buffer, timeoutMs = 5_000): Promise<{ status: number; text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks as Uint8Array[]).toString("latin1");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, closedByServer });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined);
    socket.on("close", () => finish(true));
    // A server may answer and close before the whole request is written; that is an answer too.
    socket.write(bytes, () => undefined);
  });
}

/** How an upgrade request was answered (PROTOCOL.md 2.4). */
export interface Outcome {
  /** HTTP status: 101, or the status of a plain refusal. */
  readonly status: number;
  /** After a 101: the close code the server closed with at once; undefined if it stayed open. */
  readonly code: number | undefined;
  readonly reason: string;
  /** Data messages the server sent before it closed (a refusal sends none). */
  readonly messages: number;
  readonly head: string;
}

/**
 * Sends an upgrade request and reports the answer: a plain HTTP status, or a 101 followed by an
 * immediate close (a refusal to a client that offered protocast), or a 101 that stays open for
 * `openForMs` (admitted; the socket is then destroyed).
 */
export async function outcomeOf(port: number, request: string = upgradeRequest(), openForMs = 300): Promise<Outcome> {
  const raw = await openRaw(port, request);
  if (raw.status !== 101) {
    raw.socket.destroy();
    return { status: raw.status, code: undefined, reason: "", messages: 0, head: raw.head };
  }
  let messages = 0;
  raw.onMessage = (m) => {
    if (m.opcode === Opcode.Binary || m.opcode === Opcode.Text) messages++;
  };
  const timer = new Promise<undefined>((r) => setTimeout(() => r(undefined), openForMs));
  const ended = await Promise.race([raw.ended, timer]);
  raw.socket.destroy();
  return { status: 101, code: ended?.code, reason: ended?.reason ?? "", messages, head: raw.head };
}
