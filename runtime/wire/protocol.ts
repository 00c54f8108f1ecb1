// Names both sides of the protocol agree on before the first envelope (PROTOCOL.md section 2.2)
// and the names of the HTTP fallback (section 14).

/** The WebSocket subprotocol of Protocast v1; the version lives in it and in Hello/Resume. */
export const SUBPROTOCOL = "protocast.v1";

/** A version subprotocol of any Protocast version ("protocast.v1"), not a credential one. */
export const VERSION_PROTOCOL = /^protocast\.v\d+$/;

/** Prefix of the subprotocol value that carries a credential (`protocast.token.<base64url>`). */
export const TOKEN_PROTOCOL_PREFIX = "protocast.token.";

/** The protocol version in Hello and Resume. */
export const PROTOCOL_VERSION = 1;

/** Content type of the HTTP fallback's bodies: length-prefixed records. */
export const RECORDS_TYPE = "application/vnd.protocast.v1+records";

/** Response header of the fallback's stream that names it; the client's POSTs quote it. */
export const TRANSPORT_HEADER = "protocast-transport";
