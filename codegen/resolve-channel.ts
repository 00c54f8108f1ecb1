import type { DescField, DescMethod } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import type { ChannelRules } from "../generated/protocast/v1/options_pb.js";
import { parseChannelPattern, type ChannelPattern } from "./channel-pattern.js";
import { problemAt, type Problem } from "./problem.js";
import type { ServiceDefaults } from "./resolve-call.js";
import { DELIVERY_NAMES, OVERFLOW_NAMES, type ChannelRulesValue, type DeliveryName, type OverflowName } from "./resolved-rules.js";

/** The options of a channel that resolution reads; a ChannelRules message fits. */
export type DeclaredChannel = Omit<ChannelRules, "$typeName" | "$unknown">;

/** Overflow policies that lose frames, which only an at-most-once channel may do. */
const LOSSY: ReadonlySet<OverflowName> = new Set(["drop-newest", "drop-oldest", "conflate"]);

/**
 * Applies the defaults of options.proto to a server-streaming method declared as a channel
 * and checks the pattern against the request message. `conflationKey` is the resolved key of
 * the stream message: "" when it has none, undefined when the key itself has a problem.
 * Returns the channel with the pattern's fields, or undefined after adding problems.
 */
export function resolveChannel(
  method: DescMethod,
  declared: DeclaredChannel,
  service: ServiceDefaults,
  conflationKey: string | undefined,
  problems: Problem[],
): { readonly rules: ChannelRulesValue; readonly variables: readonly DescField[] } | undefined {
  const before = problems.length;
  const report = (message: string, fix: string) => problems.push(problemAt(method, message, fix));

  const parsed = parseChannelPattern(declared.pattern);
  if (!parsed.ok) for (const issue of parsed.issues) report(issue.message, issue.fix);
  const variables = parsed.ok ? matchFields(method, parsed.pattern, report) : [];

  const delivery = enumName(DELIVERY_NAMES, declared.delivery, "at-least-once", "delivery", "protocast.v1.Delivery", report);
  const overflow = enumName(OVERFLOW_NAMES, declared.overflow, delivery === "at-most-once" ? "drop-oldest" : "disconnect", "overflow", "protocast.v1.Overflow", report);
  if (delivery !== undefined && delivery !== "at-most-once" && overflow !== undefined && LOSSY.has(overflow)) {
    report(
      `channel is ${delivery} but its overflow policy ${overflow} drops frames.`,
      `use overflow: OVERFLOW_DISCONNECT (the default) so slow subscribers resume without loss, or set delivery: DELIVERY_AT_MOST_ONCE.`,
    );
  }
  if (overflow === "conflate" && conflationKey === "") {
    report(
      `overflow OVERFLOW_CONFLATE needs a conflation key, but ${method.output.typeName} declares none.`,
      `add option (protocast.v1.message) = {conflation_key: "<scalar field>"} to message ${method.output.typeName}, or choose another overflow policy.`,
    );
  }
  if (declared.publishScope !== "" && !declared.clientPublish) {
    report(
      `publish_scope "${declared.publishScope}" is set but clients may not publish to the channel.`,
      `add client_publish: true, or remove publish_scope.`,
    );
  }
  if (problems.length > before || delivery === undefined || overflow === undefined || conflationKey === undefined) return undefined;

  const readScope = declared.readScope !== "" ? declared.readScope : service.scope;
  return {
    variables,
    rules: {
      kind: "channel",
      pattern: declared.pattern,
      params: Object.fromEntries(variables.map((f) => [f.localName, f.name])),
      delivery,
      overflow,
      maxMembers: declared.maxMembers,
      readScope,
      publishScope: declared.publishScope !== "" ? declared.publishScope : readScope,
      clientPublish: declared.clientPublish,
      presence: declared.presence,
      historySize: declared.historySize,
      historyTtlMs: declared.historyTtlMs,
      conflationKey,
    },
  };
}

// Every variable names a plain string field of the request, and every field of the request
// appears in the pattern: a subscription request then is exactly the channel name, and the
// runtime can rebuild one from the other.
function matchFields(method: DescMethod, pattern: ChannelPattern, report: (message: string, fix: string) => void): DescField[] {
  const input = method.input;
  const names = input.fields.map((f) => f.name);
  const fieldList = names.length === 0 ? "it has no fields" : `its fields: ${names.join(", ")}`;
  const matched: DescField[] = [];
  for (const variable of pattern.variables) {
    const field = input.fields.find((f) => f.name === variable);
    if (field === undefined) {
      report(
        `pattern "${pattern.source}" names {${variable}}, which is not a field of ${input.typeName} (${fieldList}).`,
        `add \`string ${variable}\` to ${input.typeName}, or name one of its fields in the pattern.`,
      );
    } else if (field.fieldKind !== "scalar" || field.scalar !== ScalarType.STRING || field.oneof !== undefined) {
      report(
        `pattern variable {${variable}} is field ${input.typeName}.${variable}, which is not a plain string field.`,
        `declare ${input.typeName}.${variable} as \`string ${variable}\` (not repeated, map, message, enum, another scalar, or in a oneof).`,
      );
    } else {
      matched.push(field);
    }
  }
  for (const field of input.fields) {
    if (!pattern.variables.includes(field.name)) {
      report(
        `field ${input.typeName}.${field.name} is not in pattern "${pattern.source}"; every request field of a channel must be.`,
        `add {${field.name}} to the pattern, or remove the field from ${input.typeName}.`,
      );
    }
  }
  return matched;
}

function enumName<N extends string>(
  names: ReadonlyMap<number, N>,
  value: number,
  fallback: N,
  option: string,
  enumType: string,
  report: (message: string, fix: string) => void,
): N | undefined {
  if (value === 0) return fallback;
  const name = names.get(value);
  if (name === undefined) report(`channel ${option} has unknown value ${value}.`, `use a ${enumType} value, or update the generator.`);
  return name;
}
