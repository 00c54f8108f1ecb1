import type { DescMessage, DescOneof } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import type { CaseFilter, FieldsOf, WireSymbols } from "./print-wire-codec.js";
import { oneofTypeName, plainName, tagBytes, tagValue, wireTypeOfKind, type WireField } from "./wire-fields.js";

/**
 * Prints `size$X(m)` and `write$X(buf, pos, m)` for one message of the plain wire codec. Both
 * walk the fields in number order with proto3's presence rules (a default scalar is omitted, a
 * present message is written even when empty), as protobuf-es's toBinary does. The size pass
 * validates every number and records the length of every nested message; the write pass then
 * trusts its input. With `only`, the functions are named with its suffix and encode only its
 * cases of its oneof; another case throws.
 */
export function printWireEncoder(f: GeneratedFile, s: WireSymbols, m: DescMessage, fieldsOf: FieldsOf, only?: CaseFilter): void {
  const name = plainName(m);
  const fn = `${name}${only?.suffix ?? ""}`;
  const steps = fieldSteps(m, fieldsOf);
  f.print(`function size$${fn}(m: ${name}): number {`);
  f.print("  let n = 0;");
  for (const step of steps) for (const line of step.kind === "oneof" ? oneofSize(s, m, step.oneof, fieldsOf, only) : fieldSize(s, step.field)) f.print("  ", ...line);
  f.print("  return n;");
  f.print("}");
  f.print();
  f.print(`function write$${fn}(buf: Uint8Array, pos: number, m: ${name}): number {`);
  for (const step of steps) for (const line of step.kind === "oneof" ? oneofWrite(m, step.oneof, fieldsOf, only) : fieldWrite(s, step.field)) f.print("  ", ...line);
  f.print("  return pos;");
  f.print("}");
  f.print();
}

type Step = { kind: "field"; field: WireField } | { kind: "oneof"; oneof: DescOneof };

/** Fields in number order; a oneof (numbered contiguously) is one step at its first field. */
function fieldSteps(m: DescMessage, fieldsOf: FieldsOf): Step[] {
  const steps: Step[] = [];
  const seen = new Set<DescOneof>();
  for (const w of fieldsOf(m)) {
    const o = w.field.oneof;
    if (o === undefined) steps.push({ kind: "field", field: w });
    else if (!seen.has(o)) {
      seen.add(o);
      steps.push({ kind: "oneof", oneof: o });
    }
  }
  return steps;
}

function tagLength(w: WireField): number {
  return tagBytes(w.field.number, wireTypeOfKind(w.kind)).length;
}

function tag(w: WireField): string {
  return tagValue(w.field.number, wireTypeOfKind(w.kind));
}

// A scalar field is one call of a field-level function of runtime/wire/writer.ts that also skips
// a default value: the codec is shipped to every browser client, and a block per field made it
// the largest module of the client's bundle.

function fieldSize(s: WireSymbols, w: WireField): Printable[][] {
  const v = `m.${w.field.localName}`;
  const t = String(tagLength(w));
  const label = JSON.stringify(w.label);
  switch (w.kind) {
    case "uint32":
      return [["n += ", s.uint32FieldSize, `(${v}, ${t}, ${label});`]];
    case "uint53":
      return [["n += ", s.uint53FieldSize, `(${v}, ${t}, ${label});`]];
    case "int32":
      return [["n += ", s.int32FieldSize, `(${v}, ${t}, ${label});`]];
    case "bool":
      return [[`if (${v}) n += ${t} + 1;`]];
    case "string":
      return [["n += ", s.stringFieldSize, `(${v}, ${t});`]];
    case "bytes":
      return [["n += ", s.bytesFieldSize, `(${v}, ${t});`]];
    case "message":
      return [[`{ const v = ${v}; if (v !== undefined) `, ...messageSize(w, "v"), " }"]];
    case "messages":
      return [[`{ const v = ${v}; for (let j = 0; j < v.length; j++) `, ...messageSize(w, "v[j]!"), " }"]];
  }
}

/** Reserves a slot in the length log (arguments run left to right) before the nested message records its own. */
function messageSize(w: WireField, expr: string): Printable[] {
  return [`n += ${String(tagLength(w))} + logLength(lengthsUsed++, size$${plainName(w.message!)}(${expr}));`];
}

function fieldWrite(s: WireSymbols, w: WireField): Printable[][] {
  const v = `m.${w.field.localName}`;
  // The field-level writers take a one-byte tag; a field numbered above 15 writes its tag itself.
  const long = tagLength(w) > 1;
  switch (w.kind) {
    case "uint32":
    case "uint53":
      if (long) return [[`{ const v = ${v}; if (v !== 0) pos = `, s.writeVarint, "(buf, ", s.writeTag, `(buf, pos, ${tag(w)}), v); }`]];
      return [["pos = ", s.writeVarintField, `(buf, pos, ${tag(w)}, ${v});`]];
    case "int32":
      if (long) return [[`{ const v = ${v}; if (v !== 0) { pos = `, s.writeTag, `(buf, pos, ${tag(w)}); pos = v < 0 ? `, s.writeNegativeInt32, "(buf, pos, v) : ", s.writeVarint, "(buf, pos, v); } }"]];
      return [["pos = ", s.writeInt32Field, `(buf, pos, ${tag(w)}, ${v});`]];
    case "bool":
      return [[`if (${v}) { pos = `, s.writeTag, `(buf, pos, ${tag(w)}); buf[pos++] = 1; }`]];
    case "string":
      if (long) return [[`{ const v = ${v}; if (v.length !== 0) pos = `, s.writeString, "(buf, ", s.writeTag, `(buf, pos, ${tag(w)}), v); }`]];
      return [["pos = ", s.writeStringField, `(buf, pos, ${tag(w)}, ${v});`]];
    case "bytes":
      if (long) return [[`{ const v = ${v}; if (v.length !== 0) pos = `, s.writeBytes, "(buf, ", s.writeTag, `(buf, pos, ${tag(w)}), v); }`]];
      return [["pos = ", s.writeBytesField, `(buf, pos, ${tag(w)}, ${v});`]];
    case "message":
      return [[`{ const v = ${v}; if (v !== undefined) `, ...messageWrite(w, "v"), " }"]];
    case "messages":
      return [[`{ const v = ${v}; for (let j = 0; j < v.length; j++) `, ...messageWrite(w, "v[j]!"), " }"]];
  }
}

function messageWrite(w: WireField, expr: string): Printable[] {
  return [`pos = write$${plainName(w.message!)}(buf, writeLengthPrefix(buf, pos, ${tag(w)}), ${expr});`];
}

/** The cases of a oneof (messages only, see wire-fields.ts); no case, or undefined, writes nothing. */
function oneofSize(s: WireSymbols, m: DescMessage, o: DescOneof, fieldsOf: FieldsOf, only: CaseFilter | undefined): Printable[][] {
  const lines: Printable[][] = [[`{ const o = m.${o.localName} as ${oneofTypeName(o)} | undefined; if (o !== undefined) switch (o.case) {`]];
  for (const w of oneofFields(m, o, fieldsOf, only)) lines.push([`  case ${JSON.stringify(w.field.localName)}: `, ...messageSize(w, "o.value"), " break;"]);
  const expected = only?.oneof === o ? `a case of ${m.typeName}.${o.name} that ${only.sender} sends` : `a case of ${m.typeName}.${o.name}`;
  lines.push(["  default: if ((o as { case: unknown }).case !== undefined) throw ", s.unencodable, `(${JSON.stringify(`${m.name}.${o.localName}`)}, (o as { case: unknown }).case, ${JSON.stringify(expected)});`]);
  lines.push(["} }"]);
  return lines;
}

function oneofWrite(m: DescMessage, o: DescOneof, fieldsOf: FieldsOf, only: CaseFilter | undefined): Printable[][] {
  const lines: Printable[][] = [[`{ const o = m.${o.localName} as ${oneofTypeName(o)} | undefined; if (o !== undefined) switch (o.case) {`]];
  for (const w of oneofFields(m, o, fieldsOf, only)) lines.push([`  case ${JSON.stringify(w.field.localName)}: `, ...messageWrite(w, "o.value"), " break;"]);
  lines.push(["} }"]);
  return lines;
}

/** The cases of a oneof, or those `only` keeps when it restricts this oneof. */
function oneofFields(m: DescMessage, o: DescOneof, fieldsOf: FieldsOf, only: CaseFilter | undefined): WireField[] {
  return fieldsOf(m).filter((w) => w.field.oneof === o && (only?.oneof !== o || only.cases.has(w.field)));
}
