import { constants, deflateRawSync } from "node:zlib";
import { optionKeys, rejectUnknownOptions } from "../../errors/check-options.js";
import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";

/**
 * permessage-deflate (RFC 7692) as the server does it. Off by default. The server negotiates
 * server_no_context_takeover, so every message is compressed on its own: a channel event is
 * compressed once per publish and the same compressed frame goes to every subscriber that
 * negotiated the extension, as the uncompressed frame goes to the others. Frames under the
 * threshold go uncompressed (allowed per message). The server also asks for
 * client_no_context_takeover and bounds the client's window, so that what it keeps per
 * connection to inflate what clients send stays small.
 */
export interface CompressionOptions {
  /** Envelopes smaller than this many bytes go uncompressed. Default 1024. */
  readonly threshold?: number;
  /** zlib level, 1 (fast) to 9 (small). Default 3: most of the gain for a fraction of the CPU. */
  readonly level?: number;
  /**
   * Largest window (2^bits bytes) a client may use for what it sends; bounds the inflate memory
   * the server holds per connection (about 2^bits + 7 KiB). 9 to 15. Default 11.
   */
  readonly clientMaxWindowBits?: number;
}

export interface CompressionSettings {
  readonly threshold: number;
  readonly level: number;
  readonly clientMaxWindowBits: number;
}

const OPTION_KEYS = optionKeys<CompressionOptions>()("threshold", "level", "clientMaxWindowBits");

export function resolveCompression(o: CompressionOptions | boolean | undefined): CompressionSettings | undefined {
  if (o === undefined || o === false) return undefined;
  if (o !== true && (typeof o !== "object" || o === null)) {
    throw new ProtocastError(Code.InvalidArgument, `createServer: option compression must be true, false or settings, got ${String(o)}`, { reason: "bad_option" });
  }
  const c = o === true ? {} : o;
  rejectUnknownOptions("createServer compression", c, OPTION_KEYS);
  const settings = { threshold: c.threshold ?? 1024, level: c.level ?? 3, clientMaxWindowBits: c.clientMaxWindowBits ?? 11 };
  const bad = (name: string, rule: string, v: number): Error =>
    new ProtocastError(Code.InvalidArgument, `createServer: option compression.${name} must be ${rule}, got ${v}`, { reason: "bad_option" });
  if (!Number.isInteger(settings.threshold) || settings.threshold < 0) throw bad("threshold", "an integer >= 0", settings.threshold);
  if (!Number.isInteger(settings.level) || settings.level < 1 || settings.level > 9) throw bad("level", "an integer from 1 to 9", settings.level);
  if (!Number.isInteger(settings.clientMaxWindowBits) || settings.clientMaxWindowBits < 9 || settings.clientMaxWindowBits > 15) {
    throw bad("clientMaxWindowBits", "an integer from 9 to 15", settings.clientMaxWindowBits);
  }
  return settings;
}

/** The `ws` server's perMessageDeflate option for these settings. */
export function wsDeflateOption(s: CompressionSettings | undefined): false | object {
  if (s === undefined) return false;
  return {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    clientMaxWindowBits: s.clientMaxWindowBits,
    // ws never compresses on its own: the transport compresses and frames what it sends.
    threshold: Number.MAX_SAFE_INTEGER,
  };
}

/**
 * One message compressed as RFC 7692 7.2.1 says: DEFLATE with a sync flush, then the trailing
 * 0x00 0x00 0xff 0xff removed.
 */
export function deflateMessage(data: Uint8Array, level: number, windowBits: number): Buffer {
  const out = deflateRawSync(data, { level, windowBits, finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}
