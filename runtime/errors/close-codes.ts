/**
 * WebSocket close codes Protocast sends. 4000-4499: the client should reconnect (and resume);
 * 4500-4999: it should not, because the same attempt would fail the same way.
 * Standard codes (1000-1015) are listed where Protocast relies on them.
 */
export const CloseCode = {
  /** Intentional close by either side. No reconnect. */
  Normal: 1000,
  /** Server shutting down or client navigating away. Reconnect (elsewhere). */
  GoingAway: 1001,
  /** RFC 6455 framing broken (ws detects it). No reconnect. */
  ProtocolError: 1002,
  /** Text frame or otherwise unacceptable data type. No reconnect. */
  UnsupportedData: 1003,
  /** Abnormal closure: no close frame (network drop). Reconnect. Never sent. */
  Abnormal: 1006,
  /** Invalid UTF-8 in a text frame. No reconnect. */
  InvalidPayload: 1007,
  /** Frame larger than the negotiated maximum. No reconnect. */
  MessageTooBig: 1009,
  /** Unexpected server failure. Reconnect with backoff. */
  InternalError: 1011,

  /** Server asked the client to move (goaway, max connection lifetime). Reconnect at once. */
  Reconnect: 4000,
  /** No pong (or no traffic) within the heartbeat timeout. Reconnect. */
  HeartbeatTimeout: 4001,
  /** The client did not read fast enough for an at-least-once channel. Reconnect and resume. */
  SlowConsumer: 4002,
  /** Hello or Resume did not arrive in time. Reconnect. */
  HandshakeTimeout: 4003,
  /** Rate limit exceeded persistently. Reconnect after a backoff. */
  RateLimited: 4004,
  /** Credential expired and was not refreshed in time. Reconnect with a fresh credential. */
  TokenExpired: 4005,
  /** Too many connections for this principal. Reconnect after a backoff. */
  TooManyConnections: 4006,
  /**
   * The server cannot admit the connection now (its authenticate hook was too slow, it is
   * shutting down). Sent right after 101 instead of an HTTP 503. Reconnect with backoff.
   */
  TryLater: 4007,

  /** The peer broke the Protocast protocol (undecodable or unexpected frame). No reconnect. */
  ProtocolViolation: 4500,
  /** The client speaks a protocol version this server does not. No reconnect. */
  UnsupportedVersion: 4501,
  /**
   * The credential (on the upgrade request or refreshed) is missing or was rejected. No
   * reconnect until the application has a new one.
   */
  Unauthorized: 4502,
  /** Refused on purpose: Origin not allowed, principal may not connect, kicked. No reconnect. */
  Forbidden: 4503,
  /** The server has no Protocast endpoint at the requested path. No reconnect. */
  NotFound: 4504,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Whether a client should reconnect after a close with this code. */
export function shouldReconnect(code: number): boolean {
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.ProtocolError:
    case CloseCode.UnsupportedData:
    case CloseCode.InvalidPayload:
    case CloseCode.MessageTooBig:
    case 1008: // policy violation (e.g. a proxy's rule): retrying would hit it again
      return false;
    default:
      return true;
  }
}
