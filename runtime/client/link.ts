import type { ProtocastError } from "../errors/protocast-error.js";
import type { Frame } from "../wire/envelope.js";

/**
 * What the request and channel machinery (requests.ts, channels.ts) need of the connection that
 * carries their frames. The connection implements it; neither side imports the other's module.
 */
export interface Link {
  /** The session is open and a transport is attached: sequenced frames may go out now. */
  readonly ready: boolean;
  /** A transport is attached (it may still be in its handshake). */
  readonly attached: boolean;
  /** The connection is closing or closed for good. */
  readonly ended: boolean;
  /** A request id, unique among the requests in flight (PROTOCOL.md 3.3, request ids). */
  takeId(): number;
  /** Numbers the frame in the session, keeps it until acknowledged, and sends it. */
  sendSequenced(frame: Frame): void;
  /** Sends a frame outside the numbering (Cancel); dropped when no transport is attached. */
  sendUnsequenced(frame: Frame): void;
  /** The local failure of a frame the server would refuse for its size (PROTOCOL.md 3.5 rule 6). */
  tooLarge(frame: Frame): ProtocastError | undefined;
  /** The failure of a request whose deadline passed; says why the connection is down when it is. */
  deadlineError(message: string): ProtocastError;
  /** The failure of a request made while too many frames wait for acknowledgement; undefined when there is room. */
  backlogFull(): ProtocastError | undefined;
}
