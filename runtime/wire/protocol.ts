// Names both sides of the protocol agree on before the first envelope (PROTOCOL.md section 2.2).

/** The WebSocket subprotocol of Protocast v1; the version lives in it and in Hello/Resume. */
export const SUBPROTOCOL = "protocast.v1";

/** Prefix of the subprotocol value that carries a credential (`protocast.token.<base64url>`). */
export const TOKEN_PROTOCOL_PREFIX = "protocast.token.";

/** The protocol version in Hello and Resume. */
export const PROTOCOL_VERSION = 1;
