import type { DescExtension, DescFile } from "@bufbuild/protobuf";
// Type-only: the values come from the CodeGeneratorRequest, see findOptionExtensions.
import type { call, channel, event, message, service } from "../generated/protocast/v1/options_pb.js";

/** The Protocast option extensions, typed as protoc-gen-es declares them. */
export interface OptionExtensions {
  readonly service: typeof service;
  readonly call: typeof call;
  readonly channel: typeof channel;
  readonly event: typeof event;
  readonly message: typeof message;
}

/**
 * Finds the Protocast extensions among the files of a CodeGeneratorRequest.
 *
 * The plugin does not import generated/protocast/v1/options_pb.ts for its values: protoc-gen-es
 * writes that file in the same `buf generate` run, so a regeneration from an empty generated/
 * would fail. The request always carries options.proto when any file uses the options, and
 * the descriptors built from it read options exactly like the generated ones.
 *
 * Returns undefined when no file imports options.proto; then no element can carry an option.
 */
export function findOptionExtensions(files: readonly DescFile[]): OptionExtensions | undefined {
  const byName = new Map<string, DescExtension>();
  for (const file of files) {
    for (const ext of file.extensions) byName.set(ext.typeName, ext);
  }
  const pick = (name: string, extendee: string, value: string): DescExtension | undefined => {
    const ext = byName.get(`protocast.v1.${name}`);
    if (ext === undefined) return undefined;
    if (ext.extendee.typeName !== extendee || ext.fieldKind !== "message" || ext.message.typeName !== value) {
      throw new Error(`extension protocast.v1.${name} does not match this generator; regenerate with a matching protocast/v1/options.proto`);
    }
    return ext;
  };
  const found = {
    service: pick("service", "google.protobuf.ServiceOptions", "protocast.v1.ServiceRules"),
    call: pick("call", "google.protobuf.MethodOptions", "protocast.v1.CallRules"),
    channel: pick("channel", "google.protobuf.MethodOptions", "protocast.v1.ChannelRules"),
    event: pick("event", "google.protobuf.MethodOptions", "protocast.v1.EventRules"),
    message: pick("message", "google.protobuf.MessageOptions", "protocast.v1.MessageRules"),
  };
  if (Object.values(found).every((e) => e === undefined)) return undefined;
  const missing = Object.entries(found).find(([, e]) => e === undefined);
  if (missing !== undefined) {
    throw new Error(`protocast/v1/options.proto lacks extension protocast.v1.${missing[0]}; use the options.proto that ships with this generator`);
  }
  // The checks above establish what the casts assert: same extendee, same message type.
  return found as unknown as OptionExtensions;
}
