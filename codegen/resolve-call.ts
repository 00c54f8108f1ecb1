import type { DescMethod } from "@bufbuild/protobuf";
import type { CallRules, ServiceRules } from "../generated/protocast/v1/options_pb.js";
import { problemAt, type Problem } from "./problem.js";
import { DELIVERY_NAMES, type CallRulesValue, type DeliveryName } from "./resolved-rules.js";

/** Call deadline when neither the method nor its service declares one (options.proto). */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** The options of a call that resolution reads; a CallRules message fits. */
export type DeclaredCall = Pick<CallRules, "delivery" | "idempotent" | "timeoutMs" | "scope">;

/** The service-wide defaults; a ServiceRules message fits. */
export type ServiceDefaults = Pick<ServiceRules, "scope" | "timeoutMs">;

/**
 * Applies the defaults of options.proto to a unary method. `declared` is undefined when the
 * method has no call option; it then gets every default. Returns undefined after adding a
 * problem when the declared values contradict each other.
 */
export function resolveCall(
  method: DescMethod,
  declared: DeclaredCall | undefined,
  service: ServiceDefaults,
  problems: Problem[],
): CallRulesValue | undefined {
  const idempotentDeclared = declared?.idempotent;
  let delivery: DeliveryName;
  if (declared === undefined || declared.delivery === 0) {
    delivery = idempotentDeclared === true ? "exactly-once" : "at-most-once";
  } else {
    const named = DELIVERY_NAMES.get(declared.delivery);
    if (named === undefined) {
      problems.push(problemAt(method, `call delivery has unknown value ${declared.delivery}.`, "use a protocast.v1.Delivery value, or update the generator."));
      return undefined;
    }
    delivery = named;
  }
  const retried = delivery !== "at-most-once";
  if (delivery === "at-least-once" && idempotentDeclared !== true) {
    // PROTOCOL.md 7.2: an at-least-once call may run twice, which only the schema's author can
    // declare safe; the generator does not assume it (nor that the client should send a key).
    const said = idempotentDeclared === false ? "idempotent: false" : "no idempotent: true";
    problems.push(
      problemAt(
        method,
        `call is at-least-once but ${said}; at-least-once calls are sent again after a lost session and may run twice.`,
        `add idempotent: true if the method is safe to run twice, or set delivery: DELIVERY_AT_MOST_ONCE.`,
      ),
    );
    return undefined;
  }
  if (retried && idempotentDeclared === false) {
    problems.push(
      problemAt(
        method,
        `call is ${delivery} but idempotent: false; ${delivery} calls are retried after a dropped connection.`,
        `remove idempotent: false if the method is safe to retry, or set delivery: DELIVERY_AT_MOST_ONCE.`,
      ),
    );
    return undefined;
  }
  return {
    kind: "call",
    delivery,
    idempotent: idempotentDeclared ?? retried,
    timeoutMs: nonZero(declared?.timeoutMs) ?? nonZero(service.timeoutMs) ?? DEFAULT_CALL_TIMEOUT_MS,
    scope: nonEmpty(declared?.scope) ?? service.scope,
  };
}

function nonZero(n: number | undefined): number | undefined {
  return n === undefined || n === 0 ? undefined : n;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}
