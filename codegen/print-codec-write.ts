import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import { fixedWidth, fn, sizeValue, tagSize, valueOf, wireTypeOf, writeValue, type CodecSymbols, type ValueKind } from "./codec-values.js";

type Names = ReadonlyMap<DescMessage, string>;

/**
 * Prints `size$X(m, l)` and `write$X(w, m)` for one message. Both walk the fields in number
 * order, as protobuf-es's toBinary does, with the same presence tests, so that the write pass
 * meets the lengths the size pass recorded in the same order. `m` may be a message or an init
 * shape: absent and null values count as unset, as create() treats them.
 */
export function printEncoder(f: GeneratedFile, s: CodecSymbols, names: Names, message: DescMessage): void {
  const fields = message.fields.concat().sort((a, b) => a.number - b.number);
  f.print("function ", fn(names, message, "size"), "(m: any, l: number[]): number {");
  f.print("  let n = 0;");
  for (const field of fields) for (const line of fieldCode(s, names, field, "size")) f.print("  ", ...line);
  f.print("  if (m.$typeName === ", f.string(message.typeName), " && m.$unknown !== undefined) n += ", s.sizeUnknown, "(m.$unknown);");
  f.print("  return n;");
  f.print("}");
  f.print();
  f.print("function ", fn(names, message, "write"), "(w: ", s.PayloadWriter, ", m: any): void {");
  for (const field of fields) for (const line of fieldCode(s, names, field, "write")) f.print("  ", ...line);
  f.print("  if (m.$typeName === ", f.string(message.typeName), " && m.$unknown !== undefined) w.unknown(m.$unknown);");
  f.print("}");
  f.print();
}

type Pass = "size" | "write";

/** Lines measuring or writing one field. */
function fieldCode(s: CodecSymbols, names: Names, field: DescField, pass: Pass): Printable[][] {
  const label = JSON.stringify(`${field.parent.typeName}.${field.name}`);
  switch (field.fieldKind) {
    case "list":
      return listCode(s, names, field, pass, label);
    case "map":
      return mapCode(s, names, field, pass, label);
    default: {
      const v = valueOf(field);
      const present = field.oneof !== undefined ? "" : presence(field, v);
      const read = field.oneof !== undefined ? `m.${field.oneof.localName}` : `m.${field.localName}`;
      const test = field.oneof !== undefined ? `o != null && o.case === ${JSON.stringify(field.localName)}` : present;
      const value = field.oneof !== undefined ? "o.value" : "v";
      const head = `{ const ${field.oneof !== undefined ? "o" : "v"} = ${read}; if (${test}) { `;
      return [[head, ...one(s, names, v, field.number, value, pass, label), " } }"]];
    }
  }
}

/** The presence test of a singular field that is not in a oneof, on `v`. */
function presence(field: DescField, v: ValueKind): string {
  // Messages and proto3 `optional` scalars have explicit presence: set means not null.
  if (v.kind === "message" || field.presence !== IMPLICIT) return "v != null";
  if (field.fieldKind === "enum") return `v != null && v !== ${String(field.enum.values[0]!.number)}`;
  switch (v.scalar) {
    case ScalarType.BOOL:
      return "v != null && v !== false";
    case ScalarType.STRING:
      return 'v != null && v !== ""';
    case ScalarType.BYTES:
      return "v != null && v.length !== 0";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      // -0 is not the zero value, and is written (Object.is semantics in protobuf-es).
      return "v != null && (v !== 0 || 1 / v < 0)";
    default:
      // Loose, as in protobuf-es: 0, 0n and "0" are all the zero value of an integer.
      return "v != null && v != 0";
  }
}

/** google.protobuf.FeatureSet.FieldPresence.IMPLICIT. */
const IMPLICIT = 2;

/** Tag and value of one field occurrence. */
function one(s: CodecSymbols, names: Names, v: ValueKind, no: number, expr: string, pass: Pass, label: string): Printable[] {
  const wt = wireTypeOf(v);
  if (pass === "size") return [`n += ${String(tagSize(no, wt))}; `, ...sizeValue(s, names, v, expr, "n", label)];
  return [`w.uint32(${String(no * 8 + wt)}); `, ...writeValue(s, names, v, expr, label)];
}

function listCode(s: CodecSymbols, names: Names, field: DescField & { fieldKind: "list" }, pass: Pass, label: string): Printable[][] {
  const v = valueOf(field);
  const packed = field.packed && v.kind === "scalar" && v.scalar !== ScalarType.STRING && v.scalar !== ScalarType.BYTES;
  const open = `{ const v = m.${field.localName}; if (v != null && v.length !== 0) { `;
  if (!packed) {
    // An absent message entry is an empty message to protobuf-es.
    const item = v.kind === "message" ? "(v[j] ?? {})" : "v[j]";
    return [[open, "for (let j = 0; j < v.length; j++) { ", ...one(s, names, v, field.number, item, pass, label), " } } }"]];
  }
  const tag = field.number * 8 + 2;
  if (pass === "write") {
    return [[open, `w.uint32(${String(tag)}); w.prefix(); for (let j = 0; j < v.length; j++) { `, ...writeValue(s, names, v, "v[j]", label), " } } }"]];
  }
  const width = fixedWidth(v);
  const body: Printable[] = width !== undefined ? [`p = v.length * ${String(width)};`] : ["for (let j = 0; j < v.length; j++) { ", ...sizeValue(s, names, v, "v[j]", "p", label), " }"];
  return [[open, "const i = l.length; l.push(0); let p = 0; ", ...body, ` l[i] = p; n += ${String(tagSize(field.number, 2))} + p + `, s.sizeVarint, "(p); } }"]];
}

function mapCode(s: CodecSymbols, names: Names, field: DescField & { fieldKind: "map" }, pass: Pass, label: string): Printable[][] {
  const key: ValueKind = { kind: "scalar", scalar: field.mapKey, longAsString: false, strict: field.utf8Validation };
  const value = valueOf(field);
  const keyTag = 8 + wireTypeOf(key);
  const valueTag = 16 + wireTypeOf(value);
  const open = `{ const v = m.${field.localName}; if (v != null) { const keys = Object.keys(v); for (let j = 0; j < keys.length; j++) { const key = keys[j]!; const mk = ${mapKey(field.mapKey)}; const mv = v[key]${value.kind === "message" ? " ?? {}" : ""}; `;
  if (pass === "write") {
    return [
      [
        open,
        `w.uint32(${String(field.number * 8 + 2)}); w.prefix(); w.uint32(${String(keyTag)}); `,
        ...writeValue(s, names, key, "mk", label),
        ` w.uint32(${String(valueTag)}); `,
        ...writeValue(s, names, value, "mv", label),
        " } } }",
      ],
    ];
  }
  return [
    [
      open,
      "const i = l.length; l.push(0); let e = 2; ",
      ...sizeValue(s, names, key, "mk", "e", label),
      " ",
      ...sizeValue(s, names, value, "mv", "e", label),
      ` l[i] = e; n += ${String(tagSize(field.number, 2))} + e + `,
      s.sizeVarint,
      "(e); } } }",
    ],
  ];
}

/** A map key is a string property; toBinary converts it back to the key type first. */
function mapKey(type: ScalarType): string {
  switch (type) {
    case ScalarType.STRING:
      return "key";
    case ScalarType.BOOL:
      return 'key === "true" ? true : key === "false" ? false : key';
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      // The 64-bit writers parse decimal strings themselves, with protobuf-es's range checks.
      return "key";
    default:
      return "Number.parseInt(key)";
  }
}
