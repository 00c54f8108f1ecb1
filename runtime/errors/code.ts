/**
 * The closed set of error codes. Numbers match protocast.v1.Code on the wire (and gRPC).
 */
export enum Code {
  /** The operation was canceled, usually by the caller. */
  Canceled = 1,
  /** An error with no better code; also what a non-Protocast exception becomes. */
  Unknown = 2,
  /** The request is malformed or a value is out of its allowed shape. */
  InvalidArgument = 3,
  /** The deadline passed before the operation finished. */
  DeadlineExceeded = 4,
  /** The method, channel or session does not exist. */
  NotFound = 5,
  /** The thing to create exists already. */
  AlreadyExists = 6,
  /** The principal is known but may not do this. */
  PermissionDenied = 7,
  /** A limit was hit: rate, size, subscriptions, room size, in-flight calls. */
  ResourceExhausted = 8,
  /** The system is not in a state that allows the operation, such as a reused idempotency key. */
  FailedPrecondition = 9,
  /** The operation was aborted, such as a call on a connection that was closed. */
  Aborted = 10,
  /** A position or value past the valid range. */
  OutOfRange = 11,
  /** The method is not implemented by this server. */
  Unimplemented = 12,
  /** A bug: an invariant of the server or the protocol broke. */
  Internal = 13,
  /** Transient: the connection is down or the server is shutting down. Retry with backoff. */
  Unavailable = 14,
  /** Data was lost and cannot be recovered, such as a gap in a channel's history. */
  DataLoss = 15,
  /** No valid credential. */
  Unauthenticated = 16,
}

const names: Record<Code, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/** The snake_case name of a code, as shown in error messages. */
export function codeName(code: Code): string {
  return names[code] ?? `code_${String(code)}`;
}

/** Reads a wire value; anything outside the enum becomes Unknown. */
export function codeFromWire(value: number): Code {
  return value in names ? (value as Code) : Code.Unknown;
}
