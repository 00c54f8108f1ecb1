// The narrow seams of a server session: what it asks of the server it lives in (SessionHost)
// and of the connection it is attached to (SessionLink). The session imports only these, so
// sessions, connections and the server core do not import one another in a circle, and a
// session can be tested with a host of the test's own.
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { Broker } from "../broker/broker.js";
import type { AnyMethodDef, ChannelDef, EventDef } from "../service/define.js";
import type { Overflow } from "../service/rules.js";
import type { Outcome } from "../session/idempotency-window.js";
import type { RetransmitLimits } from "../session/retransmit-buffer.js";
import type { DeadlineSweep } from "../session/deadline-sweep.js";
import type { Cluster } from "./cluster.js";
import type { AuthorizeRequest, CallContext, Principal, PublishContext, PublishResult, Publisher, ServerPublishOptions } from "./context.js";
import type { Tracing } from "../session/tracing.js";
import type { Metadata } from "../wire/metadata.js";
import type { PublishParent } from "./traced-publish.js";
import type { ServerCounters, ServerObserver } from "./counters.js";
import type { ChannelHub } from "./hub.js";
import type { SessionKeeper } from "./keeper.js";
import type { ServerLimits } from "./options.js";

/** A registered call handler, as the session runs it. */
export type CallHandler = (request: unknown, context: CallContext) => unknown;
/** A registered client-publish hook. */
export type PublishHook = (params: object, message: unknown, context: PublishContext) => unknown;

/** What a session needs of its connection. */
export interface SessionLink {
  /** The session the connection serves; cleared when the session leaves it. */
  session: unknown;
  sendBytes(bytes: Uint8Array): void;
  sendChannelFrame(frame: Uint8Array, channel: string, key: string, overflow: Overflow): void;
  refreshed(principal: Principal): void;
  close(code: number, reason: string): void;
}

/** What a session needs of the server it lives in; `S` is the session type itself. */
export interface SessionHost<S> {
  /** This node's id: session ids start with it. */
  readonly nodeId: string;
  readonly limits: ServerLimits;
  readonly retransmitLimits: RetransmitLimits;
  readonly counters: ServerCounters;
  readonly now: () => number;
  readonly broker: Broker;
  readonly hub: ChannelHub;
  readonly keeper: SessionKeeper | undefined;
  readonly cluster: Cluster | undefined;
  readonly authorize: ((request: AuthorizeRequest) => boolean | Promise<boolean>) | undefined;
  observer: ServerObserver | undefined;
  /** The one timer that expires every running call's deadline. */
  readonly callDeadlines: DeadlineSweep;
  /** publish() and push(), bound once: handler contexts share them. */
  readonly publisher: Publisher;
  lookup(path: string): AnyMethodDef | undefined;
  handlerFor(path: string): CallHandler | undefined;
  publishHookFor(path: string): PublishHook | undefined;
  dedupe(principal: string, key: string, target: string, payload: Uint8Array, run: () => Promise<Uint8Array>, signal: AbortSignal | undefined, leaseMs: number): Promise<Outcome>;
  reauthenticate(token: string, current: Principal): Promise<Principal>;
  publish<P extends object, M extends DescMessage>(
    channel: ChannelDef<P, M, any>,
    params: P,
    message: MessageInitShape<M>,
    options?: ServerPublishOptions,
    parent?: PublishParent,
  ): Promise<PublishResult>;
  publishBytes(def: ChannelDef, channel: string, payload: Uint8Array, metadata?: Metadata, checked?: boolean, parent?: PublishParent): Promise<PublishResult>;
  /** Makes spans when set. */
  readonly tracing: Tracing | undefined;
  push<M extends DescMessage>(event: EventDef<M, any>, principalId: string, message: MessageInitShape<M>): number;
  scheduleAck(session: S): void;
  dropDisowned(session: S): void;
  log(event: string, conn: SessionLink | undefined, extra: Record<string, unknown>): void;
}
