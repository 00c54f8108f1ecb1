import type { DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import type { CodecPlan } from "./codec-plan.js";
import { codecSymbols, fn } from "./codec-values.js";
import { printDecoder } from "./print-codec-read.js";
import { printEncoder } from "./print-codec-write.js";
import type { ResolvedService } from "./resolved-rules.js";

/** Messages of a service that cross the wire: call requests and replies, channel and event messages. */
export function wireMessages(service: ResolvedService): DescMessage[] {
  const out = new Set<DescMessage>();
  for (const m of service.methods) {
    if (m.kind === "call") out.add(m.method.input);
    out.add(m.method.output);
  }
  return [...out];
}

/**
 * The third argument of defineService: a codec per wire message the plan specialises, keyed by
 * type name, and a comment for each one left to reflection.
 */
export function printCodecTable(f: GeneratedFile, plan: CodecPlan, service: ResolvedService): Printable[] {
  const s = codecSymbols(f);
  const out: Printable[] = ["{\n"];
  for (const m of wireMessages(service)) {
    const reason = plan.fallback.get(m);
    if (reason !== undefined) {
      out.push(`  // ${m.typeName}: protobuf-es reflection, because ${reason}.\n`);
      continue;
    }
    const parts = (["size", "write", "new", "read"] as const).map((w) => fn(plan.names, m, w));
    out.push(
      "  ", f.string(m.typeName), ": ", s.payloadCodec, "({ typeName: ", f.string(m.typeName),
      `, size: ${parts[0]!}, write: ${parts[1]!}, create: ${parts[2]!}, read: ${parts[3]!} }),\n`,
    );
  }
  out.push("}");
  return out;
}

/** Prints the functions of every message the plan specialises, after the services. */
export function printCodecFunctions(f: GeneratedFile, plan: CodecPlan): void {
  if (plan.printed.length === 0 && plan.fallback.size === 0) return;
  const s = codecSymbols(f);
  f.print("// Binary codecs of the messages above that cross the wire, and of the messages they hold.");
  f.print("// They produce the bytes of protobuf-es's toBinary(create(...)) and the messages of its");
  f.print("// fromBinary; Protocast's property tests hold them to that. Field access is untyped on");
  f.print("// purpose: `m` is a message or a partial init shape.");
  for (const [m, reason] of plan.fallback) f.print(`// ${m.typeName} keeps protobuf-es reflection: ${reason}.`);
  f.print();
  for (const m of plan.printed) {
    f.print(`// ${m.typeName}`);
    printEncoder(f, s, plan.names, m);
    printDecoder(f, s, plan.names, m);
  }
}
