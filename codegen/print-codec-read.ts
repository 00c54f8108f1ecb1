import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import { fn, readScalar, scalarZero, valueOf, wireTypeOf, zeroValue, type CodecSymbols, type ValueKind } from "./codec-values.js";

type Names = ReadonlyMap<DescMessage, string>;

/**
 * Prints `new$X()` and `read$X(r, end, m)` for one message. `new$X` builds what protobuf-es's
 * create() builds for a proto3 message (members in declaration order, singular messages and
 * `optional` scalars absent); `read$X` merges fields into it as fromBinary does: the last
 * scalar wins, messages merge, lists append, packed and unpacked lists are both accepted.
 */
export function printDecoder(f: GeneratedFile, s: CodecSymbols, names: Names, message: DescMessage): void {
  f.print("function ", fn(names, message, "new"), "(): any {");
  const members: Printable[] = [`$typeName: `, f.string(message.typeName)];
  for (const member of message.members) {
    if (member.kind === "oneof") {
      members.push(`, ${member.localName}: { case: undefined }`);
      continue;
    }
    switch (member.fieldKind) {
      case "list":
        members.push(`, ${member.localName}: []`);
        break;
      case "map":
        members.push(`, ${member.localName}: {}`);
        break;
      case "scalar":
      case "enum":
        if (member.presence === IMPLICIT) members.push(`, ${member.localName}: `, zeroValue(s, member));
        break;
      case "message":
        break;
    }
  }
  f.print("  return { ", ...members, " };");
  f.print("}");
  f.print();

  const maps = message.fields.filter((x) => x.fieldKind === "map");
  f.print("function ", fn(names, message, "read"), "(r: ", s.PayloadReader, ", end: number, m: any): void {");
  f.print("  r.enter();");
  for (const map of maps) f.print(`  let entries${String(map.number)} = 0;`);
  f.print("  while (r.pos < end) {");
  f.print("    const t = r.tag();");
  f.print("    switch (t) {");
  for (const field of message.fields) for (const line of fieldCases(s, names, field)) f.print("      ", ...line);
  f.print(`      default: r.unknown(m, t, ${declared(message.fields)});`);
  f.print("    }");
  f.print("  }");
  f.print("  r.leave(end);");
  f.print("}");
  f.print();
}

/** google.protobuf.FeatureSet.FieldPresence.IMPLICIT. */
const IMPLICIT = 2;

function fieldCases(s: CodecSymbols, names: Names, field: DescField): Printable[][] {
  const v = valueOf(field);
  const tag = (wt: number) => `case ${String(field.number * 8 + wt)}: `;
  switch (field.fieldKind) {
    case "list": {
      const into = `const a = m.${field.localName}; r.more(a.length); `;
      if (v.kind === "message") {
        return [[tag(2), `{ const e = r.len(); ${into}const c = ${fn(names, v.message, "new")}(); ${fn(names, v.message, "read")}(r, e, c); a.push(c); break; }`]];
      }
      const one: Printable[] = [tag(wireTypeOf(v)), `{ ${into}a.push(${readScalar(v)}); break; }`];
      if (v.scalar === ScalarType.STRING || v.scalar === ScalarType.BYTES) return [one];
      // Either encoding is accepted whatever the field declares, as the spec asks.
      const packed: Printable[] = [tag(2), `{ const e = r.len(); const a = m.${field.localName}; while (r.pos < e) { r.more(a.length); a.push(${readScalar(v)}); } r.done(e); break; }`];
      return [one, packed];
    }
    case "map":
      return [mapCase(s, names, field)];
    default: {
      const oneof = field.oneof?.localName;
      if (v.kind === "message") {
        const create = `${fn(names, v.message, "new")}()`;
        const read = `${fn(names, v.message, "read")}(r, e, c);`;
        if (oneof !== undefined) {
          const name = JSON.stringify(field.localName);
          return [[tag(2), `{ const e = r.len(); const o = m.${oneof}; const c = o.case === ${name} ? o.value : ${create}; ${read} m.${oneof} = { case: ${name}, value: c }; break; }`]];
        }
        return [[tag(2), `{ const e = r.len(); const c = m.${field.localName} ?? ${create}; ${read} m.${field.localName} = c; break; }`]];
      }
      const value = readScalar(v);
      if (oneof !== undefined) return [[tag(wireTypeOf(v)), `m.${oneof} = { case: ${JSON.stringify(field.localName)}, value: ${value} }; break;`]];
      return [[tag(wireTypeOf(v)), `m.${field.localName} = ${value}; break;`]];
    }
  }
}

function mapCase(s: CodecSymbols, names: Names, field: DescField & { fieldKind: "map" }): Printable[] {
  const key: ValueKind & { kind: "scalar" } = { kind: "scalar", scalar: field.mapKey, longAsString: false, strict: field.utf8Validation };
  const value = valueOf(field);
  const keyZero = field.mapKey === ScalarType.STRING ? '""' : field.mapKey === ScalarType.BOOL ? "false" : "0";
  let readValue: string;
  let valueZero: Printable;
  if (value.kind === "message") {
    const create = `${fn(names, value.message, "new")}()`;
    // A value repeated within one entry merges, as any singular message field does.
    readValue = `{ const e2 = r.len(); const c = x ?? ${create}; ${fn(names, value.message, "read")}(r, e2, c); x = c; }`;
    valueZero = create;
  } else {
    readValue = `x = ${readScalar(value)};`;
    valueZero = field.mapKind === "enum" ? String(field.enum.values[0]!.number) : scalarZero(s, value.scalar, false);
  }
  return [
    `case ${String(field.number * 8 + 2)}: { `,
    `const e = r.len(); r.more(entries${String(field.number)}++); let k: any = ${keyZero}; let x: any; `,
    `while (r.pos < e) { const u = r.tag(); if (u === ${String(8 + wireTypeOf(key))}) k = ${readScalar(key)}; `,
    `else if (u === ${String(16 + wireTypeOf(value))}) ${readValue} else r.skipEntryField(u); } `,
    `r.done(e); r.entry(m.${field.localName}, k, x ?? `,
    valueZero,
    "); break; }",
  ];
}

/** Expression on `t` that is true when its field number is one the message declares. */
export function declared(fields: readonly DescField[]): string {
  if (fields.length === 0) return "false";
  const numbers = fields.map((x) => x.number).sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++;
    const lo = numbers[i]!;
    const hi = numbers[j]!;
    parts.push(lo === hi ? `t >>> 3 === ${String(lo)}` : `(t >>> 3 >= ${String(lo)} && t >>> 3 <= ${String(hi)})`);
    i = j + 1;
  }
  return parts.join(" || ");
}
