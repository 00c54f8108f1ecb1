import { Code, codeName } from "./code.js";

export interface ProtocastErrorOptions {
  /** Stable machine-readable detail, such as "idempotency_key_reused". */
  readonly reason?: string;
  /** When set, the earliest moment a retry may succeed, in milliseconds. */
  readonly retryAfterMs?: number;
  /** WebSocket close code to send when this error ends a connection. */
  readonly closeCode?: number;
  readonly cause?: unknown;
}

/**
 * The one error type of Protocast. The message starts with the code, as in
 * "[permission_denied] may not read room/ops".
 */
export class ProtocastError extends Error {
  override name = "ProtocastError";
  readonly code: Code;
  /** The message without the "[code]" prefix. */
  readonly rawMessage: string;
  readonly reason: string;
  readonly retryAfterMs: number;
  readonly closeCode: number | undefined;

  constructor(code: Code, message: string, options: ProtocastErrorOptions = {}) {
    super(`[${codeName(code)}] ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.rawMessage = message;
    this.reason = options.reason ?? "";
    this.retryAfterMs = options.retryAfterMs ?? 0;
    this.closeCode = options.closeCode;
  }

  /** Normalises anything thrown into a ProtocastError; other errors become Unknown. */
  static from(reason: unknown, fallback: Code = Code.Unknown): ProtocastError {
    if (reason instanceof ProtocastError) return reason;
    if (reason instanceof Error) {
      if (reason.name === "AbortError") return new ProtocastError(Code.Canceled, reason.message, { cause: reason });
      return new ProtocastError(fallback, reason.message, { cause: reason });
    }
    return new ProtocastError(fallback, String(reason), { cause: reason });
  }
}
