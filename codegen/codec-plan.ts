import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";

/** google.protobuf.Edition.EDITION_PROTO3; proto3 files report it as their edition. */
const EDITION_PROTO3 = 999;

/** Which messages of one generated file get specialised codecs, and under which names. */
export interface CodecPlan {
  /** Messages that cross the wire, in first-use order. */
  readonly wire: readonly DescMessage[];
  /** Messages that get printed functions: the specialised wire messages and all they contain. */
  readonly printed: readonly DescMessage[];
  /** Wire messages left to reflection, with the reason. */
  readonly fallback: ReadonlyMap<DescMessage, string>;
  /** Name part of the printed functions, unique in the file: "Outer$Inner" for a nested type. */
  readonly names: ReadonlyMap<DescMessage, string>;
}

/**
 * Decides, for each message that crosses the wire, whether the generator can print a codec
 * that matches protobuf-es exactly. It can for proto3 messages whose every contained message is
 * proto3 too; the rest (proto2 and editions presence and defaults, groups, closed enums,
 * wrapper and Struct fields that protobuf-es holds as plain values) keep reflection.
 */
export function planCodecs(wire: readonly DescMessage[]): CodecPlan {
  const fallback = new Map<DescMessage, string>();
  const printed: DescMessage[] = [];
  const seen = new Set<DescMessage>();
  for (const message of wire) {
    const closure = contained(message);
    const problem = firstProblem(closure);
    if (problem !== undefined) {
      fallback.set(message, problem);
      continue;
    }
    for (const m of closure) {
      if (!seen.has(m)) {
        seen.add(m);
        printed.push(m);
      }
    }
  }
  return { wire, printed, fallback, names: uniqueNames(printed) };
}

/** The message and every message its fields hold, transitively. */
function contained(root: DescMessage): DescMessage[] {
  const out: DescMessage[] = [];
  const seen = new Set<DescMessage>();
  const visit = (m: DescMessage): void => {
    if (seen.has(m)) return;
    seen.add(m);
    out.push(m);
    for (const f of m.fields) {
      const child = messageOf(f);
      if (child !== undefined) visit(child);
    }
  };
  visit(root);
  return out;
}

function messageOf(f: DescField): DescMessage | undefined {
  if (f.fieldKind === "message") return f.message;
  if (f.fieldKind === "list" && f.listKind === "message") return f.message;
  if (f.fieldKind === "map" && f.mapKind === "message") return f.message;
  return undefined;
}

function firstProblem(messages: readonly DescMessage[]): string | undefined {
  for (const m of messages) {
    if (m.file.edition !== EDITION_PROTO3) {
      return `${m.typeName} is declared in ${m.file.proto.syntax === "" ? "proto2" : m.file.proto.syntax} (${m.file.name}.proto), whose presence rules and defaults the fast path does not print`;
    }
    for (const f of m.fields) {
      const problem = fieldProblem(f);
      if (problem !== undefined) return `${m.typeName}.${f.name} ${problem}`;
    }
  }
  return undefined;
}

function fieldProblem(f: DescField): string | undefined {
  const child = messageOf(f);
  if (child !== undefined && "delimitedEncoding" in f && f.delimitedEncoding) return "uses the group encoding";
  if (child !== undefined) {
    if (f.fieldKind === "message" && f.oneof === undefined && isWrapperDesc(child)) return `is a wrapper type, which protobuf-es holds as a plain ${child.name}`;
    if (child.typeName === "google.protobuf.Struct" && f.parent.typeName !== "google.protobuf.Value") return "is a google.protobuf.Struct, which protobuf-es holds as a JSON object";
  }
  const e = f.fieldKind === "enum" ? f.enum : (f.fieldKind === "list" && f.listKind === "enum") || (f.fieldKind === "map" && f.mapKind === "enum") ? f.enum : undefined;
  if (e !== undefined && !e.open) return `has the closed enum ${e.typeName}`;
  return undefined;
}

function uniqueNames(messages: readonly DescMessage[]): Map<DescMessage, string> {
  const names = new Map<DescMessage, string>();
  const taken = new Set<string>();
  for (const m of messages) {
    const parts: string[] = [];
    for (let d: DescMessage | undefined = m; d !== undefined; d = d.parent) parts.unshift(d.name);
    const base = parts.join("$");
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}$${String(i)}`;
    taken.add(name);
    names.set(m, name);
  }
  return names;
}
