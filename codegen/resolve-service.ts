import { getOption, hasOption, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import type { OptionExtensions } from "./option-extensions.js";
import { problemAt, type Problem } from "./problem.js";
import { resolveCall, type ServiceDefaults } from "./resolve-call.js";
import { resolveChannel } from "./resolve-channel.js";
import { resolveEvent } from "./resolve-event.js";
import type { ResolvedMethod, ResolvedService } from "./resolved-rules.js";

/** Resolved conflation key of a message: "" for none, undefined when the key has a problem. */
export type ConflationKeyOf = (message: DescMessage) => string | undefined;

const NO_SERVICE_DEFAULTS: ServiceDefaults = { scope: "", timeoutMs: 0 };

/**
 * Resolves every method of a service. Returns undefined after adding problems; a service is
 * printed only when all of its methods resolved.
 */
export function resolveService(
  service: DescService,
  ext: OptionExtensions | undefined,
  conflationKeyOf: ConflationKeyOf,
  problems: Problem[],
): ResolvedService | undefined {
  const defaults: ServiceDefaults = ext !== undefined && hasOption(service, ext.service) ? getOption(service, ext.service) : NO_SERVICE_DEFAULTS;
  const methods: ResolvedMethod[] = [];
  let failed = false;
  for (const method of service.methods) {
    const resolved = resolveMethod(method, ext, defaults, conflationKeyOf, problems);
    if (resolved === undefined) failed = true;
    else methods.push(resolved);
  }
  return failed ? undefined : { service, methods };
}

function resolveMethod(
  method: DescMethod,
  ext: OptionExtensions | undefined,
  defaults: ServiceDefaults,
  conflationKeyOf: ConflationKeyOf,
  problems: Problem[],
): ResolvedMethod | undefined {
  const call = ext !== undefined && hasOption(method, ext.call) ? getOption(method, ext.call) : undefined;
  const channel = ext !== undefined && hasOption(method, ext.channel) ? getOption(method, ext.channel) : undefined;
  const event = ext !== undefined && hasOption(method, ext.event) ? getOption(method, ext.event) : undefined;
  const report = (message: string, fix: string): undefined => {
    problems.push(problemAt(method, message, fix));
    return undefined;
  };
  const declared = [call && "call", channel && "channel", event && "event"].filter((k) => typeof k === "string");
  if (declared.length > 1) {
    return report(
      `the method declares ${declared.map((k) => `(protocast.v1.${k})`).join(" and ")}; a method is one of call, channel or event.`,
      `keep only one of these options.`,
    );
  }
  switch (method.methodKind) {
    case "client_streaming":
    case "bidi_streaming":
      return report(
        `${method.methodKind === "bidi_streaming" ? "bidirectional" : "client"} streaming methods are not supported by Protocast v1.`,
        `use a unary call for requests, or a channel with client_publish: true for messages from clients.`,
      );
    case "unary": {
      if (channel !== undefined || event !== undefined) {
        const kind = channel !== undefined ? "channel" : "event";
        return report(
          `(protocast.v1.${kind}) is set on a unary method; a ${kind} is a server-streaming method.`,
          `declare the response as \`returns (stream ${method.output.name})\`, or use (protocast.v1.call).`,
        );
      }
      const rules = resolveCall(method, call, defaults, problems);
      return rules && { kind: "call", method, rules };
    }
    case "server_streaming": {
      if (call !== undefined) {
        return report(
          `(protocast.v1.call) is set on a server-streaming method; a call is unary.`,
          `use (protocast.v1.channel) or (protocast.v1.event), or remove "stream" from the response.`,
        );
      }
      if (channel !== undefined) {
        const resolved = resolveChannel(method, channel, defaults, conflationKeyOf(method.output), problems);
        return resolved && { kind: "channel", method, ...resolved };
      }
      if (event !== undefined) {
        const rules = resolveEvent(method, event, defaults, problems);
        return rules && { kind: "event", method, rules };
      }
      return report(
        `the server-streaming method is neither a channel nor an event.`,
        `add option (protocast.v1.channel) = {pattern: "..."} for a stream many sessions share, or option (protocast.v1.event) = {} for messages pushed to one session.`,
      );
    }
  }
}
