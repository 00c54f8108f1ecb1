/**
 * The options a service author declares in .proto files, as the generator resolves them.
 * Defaults are already applied by the generator, so every field is present and literal.
 */

/** How hard the runtime tries to deliver a frame. See PROTOCOL.md, "Delivery classes". */
export type Delivery = "at-most-once" | "at-least-once" | "exactly-once";

/** What happens to a subscriber whose send buffer is past its high-water mark. */
export type Overflow = "drop-newest" | "drop-oldest" | "conflate" | "disconnect";

/** Rules of a unary call. */
export interface CallRules {
  readonly kind: "call";
  readonly delivery: Delivery;
  readonly idempotent: boolean;
  /** Deadline in milliseconds. */
  readonly timeoutMs: number;
  /** Scope the principal needs; "" when none is declared. */
  readonly scope: string;
}

/** Rules of a channel. */
export interface ChannelRules {
  readonly kind: "channel";
  /** Name pattern such as "room/{room_id}". */
  readonly pattern: string;
  /** Pattern variables: the parameter's TypeScript name mapped to its proto field name. */
  readonly params: Readonly<Record<string, string>>;
  readonly delivery: Delivery;
  readonly overflow: Overflow;
  /** Largest number of subscribers; 0 takes the server's default. */
  readonly maxMembers: number;
  readonly readScope: string;
  readonly publishScope: string;
  readonly clientPublish: boolean;
  readonly presence: boolean;
  /** Events kept for recovery; 0 takes the server's default. */
  readonly historySize: number;
  /** Milliseconds an event stays in history; 0 takes the server's default. */
  readonly historyTtlMs: number;
  /** TypeScript name of the message field used as conflation key; "" when none. */
  readonly conflationKey: string;
}

/** Rules of a direct event pushed to one session. */
export interface EventRules {
  readonly kind: "event";
  readonly delivery: Delivery;
  readonly scope: string;
}

export type MethodRules = CallRules | ChannelRules | EventRules;
