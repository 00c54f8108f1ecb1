import { randomBytes } from "node:crypto";
import type { StoreBeginResult } from "../../broker/idempotency-store.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";
import type { Outcome } from "../../session/idempotency-window.js";

// What the Redis and NATS idempotency stores share: option checks, the wait, the record bytes.

export interface SharedStoreOptions {
  /** How long a completed record is kept, in ms. Default 600 000 (10 min). */
  readonly ttlMs?: number;
  /** How often a duplicate waiting for a running request reads its record again, in ms. Default 25. */
  readonly pollMs?: number;
  /** How long a call waits for a lost connection before failing with UNAVAILABLE, in ms. Default 5000. */
  readonly outageWaitMs?: number;
}

/** Fills in the defaults; throws INVALID_ARGUMENT naming the option and the value. */
export function checkStoreOptions(options: SharedStoreOptions): Required<SharedStoreOptions> {
  const checked = { ttlMs: options.ttlMs ?? 600_000, pollMs: options.pollMs ?? 25, outageWaitMs: options.outageWaitMs ?? 5_000 };
  for (const [name, min] of [["ttlMs", 1], ["pollMs", 1], ["outageWaitMs", 0]] as const) checkInteger(name, checked[name], min);
  return checked;
}

export function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new ProtocastError(Code.InvalidArgument, `${name} must be an integer >= ${min}, got ${value}`);
}

/** One look at a key: a final answer, or the token of the request running under it. */
export type Attempt = StoreBeginResult | { readonly kind: "wait"; readonly token: string };

/**
 * Run tokens name the store instance that holds the run: "<holder>.<random>". A holder is
 * named only while the instance can be found alive (see HolderLiveness); a token without a
 * holder ("<random>") is waited out to the end of its lease.
 */
export function runToken(holder: string | undefined): string {
  const random = randomBytes(12).toString("base64url");
  return holder === undefined ? random : `${holder}.${random}`;
}

/** The holder a run token names, or undefined. */
export function tokenHolder(token: string): string | undefined {
  const dot = token.indexOf(".");
  return dot > 0 ? token.slice(0, dot) : undefined;
}

/** How often a waiting duplicate asks whether the holder of the running request still lives. */
const HOLDER_PROBE_MS = 250;

/**
 * begin() of a shared store: `attempt` registers the request or reports the one running, and
 * is repeated every pollMs until it gives an answer. `seen` is the token of the running
 * request last seen, "" at first: when that request was forgotten, its transient outcome is
 * the answer. `takeOver` is the token of a running request whose holder is gone (its process
 * died: `gone` said so), which the attempt may replace without waiting for its lease; "" when
 * none. An abort rejects at once; should the attempt in flight then turn out to have
 * registered the request, `release` drops the registration again, so nobody waits on a
 * request that will never run.
 */
export async function pollBegin(
  attempt: (seen: string, takeOver: string) => Promise<Attempt>,
  release: () => Promise<void>,
  pollMs: number,
  signal: AbortSignal | undefined,
  gone?: (holder: string) => Promise<boolean>,
): Promise<StoreBeginResult> {
  // Like the embedded store, the first look registers the request even if already aborted.
  let a = await attempt("", "");
  let probedAt = -Infinity;
  while (a.kind === "wait") {
    const seen = a.token;
    const holder = tokenHolder(seen);
    let takeOver = "";
    if (holder !== undefined && gone !== undefined && Date.now() - probedAt >= HOLDER_PROBE_MS) {
      probedAt = Date.now();
      if (await gone(holder).catch(() => false)) takeOver = seen;
    }
    if (takeOver === "") await pause(pollMs, signal);
    const next = attempt(seen, takeOver);
    a = await (signal === undefined ? next : abortable(next, signal, (late) => late.kind === "run" && void release().catch(() => undefined)));
  }
  return a;
}

/** Resolves after `ms`, or rejects with the signal's reason; leaves no timer or listener behind. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `work`, or the signal's reason once aborted; `late` gets what the work gave after that. */
function abortable<T>(work: Promise<T>, signal: AbortSignal, late: (value: T) => void): Promise<T> {
  const afterAbort = (): void => void work.then(late, () => undefined);
  if (signal.aborted) {
    afterAbort();
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason);
      afterAbort();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Bytes of what the shared idempotency stores keep. An outcome is
 *   0x00 payload...                                   (reply; the payload runs to the end)
 *   0x01 u32 code, u32 n, message[n], u32 m, reason[m] (error; UTF-8 text)
 * with big-endian integers, so a payload is stored as it is, never base64'd.
 */
export function encodeOutcome(outcome: Outcome): Uint8Array {
  if (outcome.kind === "reply") {
    const out = new Uint8Array(1 + outcome.payload.byteLength);
    out.set(outcome.payload, 1);
    return out;
  }
  return new ByteWriter().u8(1).u32(outcome.code).text(outcome.message).text(outcome.reason).finish();
}

export function decodeOutcome(bytes: Uint8Array): Outcome {
  const r = new ByteReader(bytes);
  const kind = r.u8();
  if (kind === 0) return { kind: "reply", payload: r.rest() };
  if (kind !== 1) throw malformed(`unknown outcome kind ${kind}`);
  const outcome: Outcome = { kind: "error", code: r.u32(), message: r.text(), reason: r.text() };
  r.end();
  return outcome;
}

/**
 * A string's bytes, different for different strings: UTF-8 when the string is well formed,
 * otherwise 0xff and its UTF-16 code units (0xff never occurs in UTF-8), as UTF-8 would turn
 * every lone surrogate into the same U+FFFD.
 */
export function stringBytes(s: string): Buffer {
  if (!loneSurrogate.test(s)) return Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.of(0xff), Buffer.from(s, "utf16le")]);
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export class ByteWriter {
  private readonly parts: Uint8Array[] = [];

  u8(n: number): this {
    this.parts.push(Uint8Array.of(n));
    return this;
  }

  u32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n >>> 0);
    this.parts.push(b);
    return this;
  }

  f64(n: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, n);
    this.parts.push(b);
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(b: Uint8Array): this {
    this.u32(b.byteLength);
    this.parts.push(b);
    return this;
  }

  text(s: string): this {
    return this.bytes(utf8.encode(s));
  }

  /** Bytes up to the end, with no length. */
  rest(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

export class ByteReader {
  private at = 0;
  private readonly view: DataView;

  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }

  u32(): number {
    this.need(4);
    const n = this.view.getUint32(this.at);
    this.at += 4;
    return n;
  }

  f64(): number {
    this.need(8);
    const n = this.view.getFloat64(this.at);
    this.at += 8;
    return n;
  }

  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    return this.copy(this.at, (this.at += n));
  }

  text(): string {
    try {
      return fromUtf8.decode(this.bytes());
    } catch (e) {
      throw e instanceof ProtocastError ? e : malformed("text is not UTF-8");
    }
  }

  rest(): Uint8Array {
    const out = this.copy(this.at, this.b.byteLength);
    this.at = this.b.byteLength;
    return out;
  }

  /** A plain Uint8Array of its own: the source may be a Buffer the client reuses (Buffer.slice shares). */
  private copy(from: number, to: number): Uint8Array {
    return new Uint8Array(this.b.subarray(from, to));
  }

  end(): void {
    if (this.at !== this.b.byteLength) throw malformed(`${this.b.byteLength - this.at} bytes left over`);
  }

  private need(n: number): void {
    if (this.at + n > this.b.byteLength) throw malformed(`needs ${n} bytes at ${this.at}, has ${this.b.byteLength - this.at}`);
  }
}

function malformed(detail: string): ProtocastError {
  return new ProtocastError(Code.Internal, `malformed idempotency record: ${detail}`, { reason: "idempotency_store" });
}
