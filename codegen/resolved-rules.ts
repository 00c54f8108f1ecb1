import type { DescField, DescMethod, DescService } from "@bufbuild/protobuf";

// These shapes mirror runtime/service/rules.ts, which the generated code must satisfy. The
// generator cannot import the runtime (it only prints code that refers to it), so the
// literal-types test checks that both stay in step.

export type DeliveryName = "at-most-once" | "at-least-once" | "exactly-once";
export type OverflowName = "drop-newest" | "drop-oldest" | "conflate" | "disconnect";

/** Wire names of protocast.v1.Delivery values; 0 (unspecified) is absent on purpose. */
export const DELIVERY_NAMES: ReadonlyMap<number, DeliveryName> = new Map([
  [1, "at-most-once"],
  [2, "at-least-once"],
  [3, "exactly-once"],
]);

/** Wire names of protocast.v1.Overflow values; 0 (unspecified) is absent on purpose. */
export const OVERFLOW_NAMES: ReadonlyMap<number, OverflowName> = new Map([
  [1, "drop-newest"],
  [2, "drop-oldest"],
  [3, "conflate"],
  [4, "disconnect"],
]);

/** Effective rules of a unary call; property order is the printed order. */
export interface CallRulesValue {
  readonly kind: "call";
  readonly delivery: DeliveryName;
  readonly idempotent: boolean;
  readonly timeoutMs: number;
  readonly scope: string;
}

/** Effective rules of a channel; property order is the printed order. */
export interface ChannelRulesValue {
  readonly kind: "channel";
  readonly pattern: string;
  /** TypeScript parameter name to proto field name, in pattern order. */
  readonly params: Readonly<Record<string, string>>;
  readonly delivery: DeliveryName;
  readonly overflow: OverflowName;
  readonly maxMembers: number;
  readonly readScope: string;
  readonly publishScope: string;
  readonly clientPublish: boolean;
  readonly presence: boolean;
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly conflationKey: string;
}

/** Effective rules of a direct event; property order is the printed order. */
export interface EventRulesValue {
  readonly kind: "event";
  readonly delivery: DeliveryName;
  readonly scope: string;
}

export interface ResolvedCall {
  readonly kind: "call";
  readonly method: DescMethod;
  readonly rules: CallRulesValue;
}

export interface ResolvedChannel {
  readonly kind: "channel";
  readonly method: DescMethod;
  readonly rules: ChannelRulesValue;
  /** Request fields named by the pattern, in pattern order. */
  readonly variables: readonly DescField[];
}

export interface ResolvedEvent {
  readonly kind: "event";
  readonly method: DescMethod;
  readonly rules: EventRulesValue;
}

export type ResolvedMethod = ResolvedCall | ResolvedChannel | ResolvedEvent;

/** A service whose every method resolved without a problem. */
export interface ResolvedService {
  readonly service: DescService;
  readonly methods: readonly ResolvedMethod[];
}
