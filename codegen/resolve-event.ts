import type { DescMethod } from "@bufbuild/protobuf";
import type { EventRules } from "../generated/protocast/v1/options_pb.js";
import { problemAt, type Problem } from "./problem.js";
import type { ServiceDefaults } from "./resolve-call.js";
import { DELIVERY_NAMES, type EventRulesValue } from "./resolved-rules.js";

/** The options of an event that resolution reads; an EventRules message fits. */
export type DeclaredEvent = Pick<EventRules, "delivery" | "scope">;

/**
 * Applies the defaults of options.proto to a server-streaming method declared as an event.
 * Returns undefined after adding problems.
 */
export function resolveEvent(
  method: DescMethod,
  declared: DeclaredEvent,
  service: ServiceDefaults,
  problems: Problem[],
): EventRulesValue | undefined {
  const before = problems.length;
  // The server pushes an event without a request from the client, so there is nothing a
  // request field could carry.
  if (method.input.fields.length > 0) {
    problems.push(
      problemAt(
        method,
        `event request ${method.input.typeName} has fields (${method.input.fields.map((f) => f.name).join(", ")}); an event is pushed without a request.`,
        `remove the fields of ${method.input.typeName}, or declare the method as a channel with a pattern.`,
      ),
    );
  }
  const delivery = declared.delivery === 0 ? "at-least-once" : DELIVERY_NAMES.get(declared.delivery);
  if (delivery === undefined) {
    problems.push(problemAt(method, `event delivery has unknown value ${declared.delivery}.`, "use a protocast.v1.Delivery value, or update the generator."));
  }
  if (problems.length > before || delivery === undefined) return undefined;
  return { kind: "event", delivery, scope: declared.scope !== "" ? declared.scope : service.scope };
}
