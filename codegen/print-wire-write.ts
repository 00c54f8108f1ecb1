import type { DescMessage, DescOneof } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import type { FieldsOf, WireSymbols } from "./print-wire-codec.js";
import { oneofTypeName, plainName, tagBytes, wireTypeOfKind, type WireField } from "./wire-fields.js";

/**
 * Prints `size$X(m)` and `write$X(buf, pos, m)` for one message of the plain wire codec. Both
 * walk the fields in number order with proto3's presence rules (a default scalar is omitted, a
 * present message is written even when empty), as protobuf-es's toBinary does. The size pass
 * validates every number and records the length of every nested message; the write pass then
 * writes tags as literal bytes and trusts its input.
 */
export function printWireEncoder(f: GeneratedFile, s: WireSymbols, m: DescMessage, fieldsOf: FieldsOf): void {
  const name = plainName(m);
  const steps = fieldSteps(m, fieldsOf);
  f.print(`function size$${name}(m: ${name}): number {`);
  f.print("  let n = 0;");
  for (const step of steps) for (const line of step.kind === "oneof" ? oneofSize(s, m, step.oneof, fieldsOf) : fieldSize(s, step.field)) f.print("  ", ...line);
  f.print("  return n;");
  f.print("}");
  f.print();
  f.print(`function write$${name}(buf: Uint8Array, pos: number, m: ${name}): number {`);
  for (const step of steps) for (const line of step.kind === "oneof" ? oneofWrite(s, m, step.oneof, fieldsOf) : fieldWrite(s, step.field)) f.print("  ", ...line);
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

/** Statements writing a field's tag bytes at `pos`. */
function writeTag(w: WireField): string {
  return tagBytes(w.field.number, wireTypeOfKind(w.kind)).map((b) => `buf[pos++] = ${b};`).join(" ");
}

function fieldSize(s: WireSymbols, w: WireField): Printable[][] {
  const v = `const v = m.${w.field.localName};`;
  const t = String(tagLength(w));
  const label = JSON.stringify(w.label);
  switch (w.kind) {
    case "uint32":
      return [[`{ ${v} if (v !== 0) n += ${t} + `, s.uint32Size, `(v, ${label}); }`]];
    case "uint53":
      return [[`{ ${v} if (v !== 0) n += ${t} + `, s.uint53Size, `(v, ${label}); }`]];
    case "int32":
      return [[`{ ${v} if (v !== 0) n += ${t} + `, s.int32Size, `(v, ${label}); }`]];
    case "bool":
      return [[`if (m.${w.field.localName}) n += ${t} + 1;`]];
    case "string":
      return [[`{ ${v} if (v.length !== 0) n += ${t} + `, s.stringSize, "(v); }"]];
    case "bytes":
      return [[`{ ${v} if (v.length !== 0) n += ${t} + `, s.bytesSize, "(v); }"]];
    case "message":
      return [[`{ ${v} if (v !== undefined) `, ...messageSize(s, w, "v"), " }"]];
    case "messages":
      return [[`{ ${v} for (let j = 0; j < v.length; j++) `, ...messageSize(s, w, "v[j]!"), " }"]];
  }
}

/** Reserves a slot in the length log before the nested message records its own. */
function messageSize(s: WireSymbols, w: WireField, expr: string): Printable[] {
  return [`{ const i = lengthsUsed++; const k = size$${plainName(w.message!)}(${expr}); lengths[i] = k; n += ${String(tagLength(w))} + `, s.varintSize, "(k) + k; }"];
}

function fieldWrite(s: WireSymbols, w: WireField): Printable[][] {
  const v = `const v = m.${w.field.localName};`;
  const tag = writeTag(w);
  switch (w.kind) {
    case "uint32":
    case "uint53":
      return [[`{ ${v} if (v !== 0) { ${tag} pos = `, s.writeVarint, "(buf, pos, v); } }"]];
    case "int32":
      return [[`{ ${v} if (v !== 0) { ${tag} pos = v < 0 ? `, s.writeNegativeInt32, "(buf, pos, v) : ", s.writeVarint, "(buf, pos, v); } }"]];
    case "bool":
      return [[`if (m.${w.field.localName}) { ${tag} buf[pos++] = 1; }`]];
    case "string":
      return [[`{ ${v} if (v.length !== 0) { ${tag} pos = `, s.writeString, "(buf, pos, v); } }"]];
    case "bytes":
      return [[`{ ${v} if (v.length !== 0) { ${tag} pos = `, s.writeBytes, "(buf, pos, v); } }"]];
    case "message":
      return [[`{ ${v} if (v !== undefined) { ${tag} `, ...messageWrite(s, w, "v"), " } }"]];
    case "messages":
      return [[`{ ${v} for (let j = 0; j < v.length; j++) { ${tag} `, ...messageWrite(s, w, "v[j]!"), " } }"]];
  }
}

function messageWrite(s: WireSymbols, w: WireField, expr: string): Printable[] {
  return ["pos = ", s.writeVarint, `(buf, pos, lengths[lengthsRead++]!); pos = write$${plainName(w.message!)}(buf, pos, ${expr});`];
}

/** The cases of a oneof (messages only, see wire-fields.ts); no case, or undefined, writes nothing. */
function oneofSize(s: WireSymbols, m: DescMessage, o: DescOneof, fieldsOf: FieldsOf): Printable[][] {
  const lines: Printable[][] = [[`{ const o = m.${o.localName} as ${oneofTypeName(o)} | undefined; if (o !== undefined) switch (o.case) {`]];
  for (const w of oneofFields(m, o, fieldsOf)) lines.push([`  case ${JSON.stringify(w.field.localName)}: `, ...messageSize(s, w, "o.value"), " break;"]);
  lines.push(["  default: if ((o as { case: unknown }).case !== undefined) throw ", s.unencodable, `(${JSON.stringify(`${m.name}.${o.localName}`)}, (o as { case: unknown }).case, "a case of ${m.typeName}.${o.name}");`]);
  lines.push(["} }"]);
  return lines;
}

function oneofWrite(s: WireSymbols, m: DescMessage, o: DescOneof, fieldsOf: FieldsOf): Printable[][] {
  const lines: Printable[][] = [[`{ const o = m.${o.localName} as ${oneofTypeName(o)} | undefined; if (o !== undefined) switch (o.case) {`]];
  for (const w of oneofFields(m, o, fieldsOf)) lines.push([`  case ${JSON.stringify(w.field.localName)}: ${writeTag(w)} `, ...messageWrite(s, w, "o.value"), " break;"]);
  lines.push(["} }"]);
  return lines;
}

function oneofFields(m: DescMessage, o: DescOneof, fieldsOf: FieldsOf): WireField[] {
  return fieldsOf(m).filter((w) => w.field.oneof === o);
}
