import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { ChannelDef, EventDef } from "../service/define.js";
import type { Metadata } from "../wire/metadata.js";

/** Who is on the other end, as the server's authenticate hook said. */
export interface Principal {
  /** Stable user identifier; connection limits and idempotency keys are scoped to it. */
  readonly id: string;
  /** Scopes granted to the principal; checked against scopes declared in .proto files. */
  readonly scopes: readonly string[];
  /** When the credential expires, in Unix milliseconds; undefined when it does not. */
  readonly expiresAtMs?: number | undefined;
  /**
   * Set for principals that stand for nobody in particular (the default authenticate): their
   * id differs per connection, so a Resume is judged by the resume token alone.
   */
  readonly anonymous?: boolean | undefined;
  /** Anything else the application wants to carry along. */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

/** Where a publish landed in its channel. */
export interface PublishResult {
  readonly channel: string;
  readonly epoch: string;
  readonly offset: number;
}

/** Options of a server-side publish. */
export interface ServerPublishOptions {
  /**
   * Metadata delivered with the event to every subscriber (PROTOCOL.md 3.8), within the
   * server's metadata limits; INVALID_ARGUMENT "bad_metadata" otherwise.
   */
  readonly metadata?: Metadata;
}

/** What a server-side publisher can do; shared by handlers and the server object. */
export interface Publisher {
  /** Publishes to a channel: encoded once, the same bytes go to every subscriber. */
  publish<P extends object, M extends DescMessage>(
    channel: ChannelDef<P, M, any>,
    params: P,
    message: MessageInitShape<M>,
    options?: ServerPublishOptions,
  ): Promise<PublishResult>;
  /** Pushes a direct event to every connection of a principal. Resolves to the number reached. */
  push<M extends DescMessage>(event: EventDef<M, any>, principalId: string, message: MessageInitShape<M>): number;
}

/** The context a call handler receives. */
export interface CallContext extends Publisher {
  readonly principal: Principal;
  /** Session of the caller; stable across reconnects that resume. */
  readonly sessionId: string;
  /** "package.Service/Method". */
  readonly method: string;
  /** Aborted when the deadline passes, the client cancels, or the connection closes for good. */
  readonly signal: AbortSignal;
  /** Absolute deadline in Unix milliseconds. */
  readonly deadline: number;
  /** The call's idempotency key, or "" when the method is not idempotent. */
  readonly idempotencyKey: string;
  /** The call's metadata (PROTOCOL.md 3.8), read-only; empty when it has none. */
  readonly metadata: Metadata;
}

/** The context a client-publish hook receives. */
export interface PublishContext {
  readonly principal: Principal;
  readonly sessionId: string;
  /** The concrete channel name, such as "typing/lobby". */
  readonly channel: string;
  /** The publish's metadata, read-only; it goes on to subscribers with the event. */
  readonly metadata: Metadata;
}

/** What the server's authorize hook is asked, after the scopes declared in .proto passed. */
export interface AuthorizeRequest {
  readonly principal: Principal;
  readonly action: "call" | "subscribe" | "publish";
  /** "package.Service/Method". */
  readonly method: string;
  /** The concrete channel name; "" for calls. */
  readonly channel: string;
  /** The channel's parameters, such as { roomId: "lobby" }; undefined for calls. */
  readonly params: Readonly<Record<string, string>> | undefined;
  /** Metadata of the call or publish (empty for a subscribe). */
  readonly metadata: Metadata;
}
