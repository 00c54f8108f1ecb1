import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { ProtocastError } from "../errors/protocast-error.js";
import type { CallDef, ChannelDef, EventDef } from "../service/define.js";
import type { ConnectionState } from "../session/states.js";
import type { TransportKind } from "./options.js";
import type { Outbox } from "./outbox-api.js";
import type { CallOptions, EventStream, PublishOptions, SubscribeOptions, Subscription } from "./types.js";

// The public face of a connection: what connect() returns and the events it reports. The
// implementation is in connection.ts.

/**
 * connecting: first attempt. open: Welcome received. reconnecting: waiting for or making a
 * later attempt. closing/closed: after close(), or when reconnecting is over.
 *
 *   connecting ──welcome──▶ open ──drop──▶ reconnecting ──welcome──▶ open
 *       │                    │                  │
 *       └──────── close() or a no-reconnect code or attempts used up ──▶ closed
 */
export type { ConnectionState };

export interface ConnectionEvents {
  state: { readonly oldState: ConnectionState; readonly newState: ConnectionState };
  /**
   * An attempt to connect failed (code and reason say why; the connection keeps trying), or the
   * connection ended for good (state is then already "closed"): a refusal that retrying cannot
   * fix, a no-reconnect close code, or attempts used up.
   */
  error: ProtocastError;
  /** A new session began; `previous` is set when an earlier session could not be continued. */
  session: { readonly sessionId: string; readonly principal: string; readonly previous: string };
  /**
   * The previous session could not be resumed. Server frames lostFromSeq..lostToSeq (reliable
   * pushes, answers) will never arrive; failedCalls non-idempotent calls failed with
   * UNAVAILABLE reason "session_lost". Subscriptions recover on their own (or report a gap).
   */
  sessionLost: {
    readonly previousSessionId: string;
    readonly reason: string;
    readonly lostFromSeq: number;
    readonly lostToSeq: number;
    readonly failedCalls: number;
  };
}

/** One logical connection to a server; survives drops by reconnecting underneath. */
export interface Connection {
  readonly state: ConnectionState;
  /** How the current connection travels: "websocket", "http" (the fallback), or "custom". */
  readonly transportKind: TransportKind | "custom" | undefined;
  readonly sessionId: string;
  /** Principal id the server authenticated, once open. */
  readonly principal: string;
  /** The persistent outbox (ConnectOptions.outbox): outcomes of calls an earlier client left unanswered. */
  readonly outbox: Outbox;
  on<K extends keyof ConnectionEvents>(event: K, listener: (data: ConnectionEvents[K]) => void): () => void;
  /** Resolves when the connection is open; rejects with the cause if it closes for good first. */
  opened(): Promise<void>;
  /** Closes for good: pending calls fail with CANCELED, subscriptions end. */
  close(): Promise<void>;
  call<I extends DescMessage, O extends DescMessage>(def: CallDef<I, O, any>, request: MessageInitShape<I>, options?: CallOptions): Promise<MessageShape<O>>;
  subscribe<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, options?: SubscribeOptions): Subscription<MessageShape<M>>;
  publish<M extends DescMessage>(def: ChannelDef<any, M, any>, params: object, message: MessageInitShape<M>, options?: PublishOptions): Promise<void>;
  events<M extends DescMessage>(def: EventDef<M, any>): EventStream<MessageShape<M>>;
}
