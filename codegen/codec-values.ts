import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, ImportSymbol, Printable } from "@bufbuild/protoplugin";
import { RUNTIME_PACKAGE } from "./print-service.js";

// The value-level building blocks of printed codecs: how one scalar, enum or message value is
// measured, written and read. Field-level code (presence, lists, maps, oneofs) is in
// print-codec-write.ts and print-codec-read.ts.

/** What a single value of a field is, for printing. */
export type ValueKind =
  | { readonly kind: "scalar"; readonly scalar: ScalarType; readonly longAsString: boolean; readonly strict: boolean }
  | { readonly kind: "message"; readonly message: DescMessage };

/** Wire type of a value of this kind. */
export function wireTypeOf(v: ValueKind): number {
  if (v.kind === "message") return 2;
  switch (v.scalar) {
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return 5;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return 2;
    default:
      return 0;
  }
}

/** Runtime helpers printed code refers to; protoplugin imports only those printed. */
export type CodecSymbols = ReturnType<typeof codecSymbols>;

export function codecSymbols(f: GeneratedFile) {
  const rt = (name: string) => f.import(name, RUNTIME_PACKAGE);
  return {
    payloadCodec: rt("payloadCodec"),
    sizeVarint: rt("sizeVarint"),
    sizeInt32: rt("sizeInt32"),
    sizeSint32: rt("sizeSint32"),
    sizeUtf8: rt("sizeUtf8"),
    sizeInt64: rt("sizeInt64"),
    sizeUint64: rt("sizeUint64"),
    sizeSint64: rt("sizeSint64"),
    sizeUnknown: rt("sizeUnknown"),
    toBytes: rt("toBytes"),
    PayloadWriter: f.import("PayloadWriter", RUNTIME_PACKAGE, true),
    PayloadReader: f.import("PayloadReader", RUNTIME_PACKAGE, true),
    protoInt64: f.import("protoInt64", "@bufbuild/protobuf"),
  };
}

/** Names of the four functions printed for a message. */
export function fn(names: ReadonlyMap<DescMessage, string>, m: DescMessage, what: "size" | "write" | "new" | "read"): string {
  return `${what}$${names.get(m)!}`;
}

/** The value kind of a singular, list or map-value field. */
export function valueOf(field: DescField): ValueKind {
  const strict = field.utf8Validation;
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar, longAsString: field.longAsString, strict };
    case "enum":
      return { kind: "scalar", scalar: ScalarType.INT32, longAsString: false, strict };
    case "message":
      return { kind: "message", message: field.message };
    case "list":
      if (field.listKind === "message") return { kind: "message", message: field.message };
      return { kind: "scalar", scalar: field.listKind === "enum" ? ScalarType.INT32 : field.scalar, longAsString: field.listKind === "scalar" && field.longAsString, strict };
    case "map":
      // Map values of 64-bit types are bigints whatever jstype says, as in protobuf-es.
      if (field.mapKind === "message") return { kind: "message", message: field.message };
      return { kind: "scalar", scalar: field.mapKind === "enum" ? ScalarType.INT32 : field.scalar, longAsString: false, strict };
  }
}

/** Fixed width in bytes of a value on the wire, undefined when it varies. */
export function fixedWidth(v: ValueKind): number | undefined {
  const wt = wireTypeOf(v);
  return wt === 1 ? 8 : wt === 5 ? 4 : v.kind === "scalar" && v.scalar === ScalarType.BOOL ? 1 : undefined;
}

/**
 * Statement adding the size of value `v` (without tag) to `acc`. Strings and messages record
 * their length for the write pass.
 */
export function sizeValue(s: CodecSymbols, names: ReadonlyMap<DescMessage, string>, v: ValueKind, expr: string, acc: string, field: string): Printable[] {
  if (v.kind === "message") {
    return [`{ const i = l.length; l.push(0); const k = ${fn(names, v.message, "size")}(${expr}, l); l[i] = k; ${acc} += k + `, s.sizeVarint, `(k); }`];
  }
  const width = fixedWidth(v);
  if (width !== undefined) return [`${acc} += ${String(width)};`];
  const call = (helper: ImportSymbol, ...args: string[]): Printable[] => [`${acc} += `, helper, `(${[expr, ...args].join(", ")});`];
  switch (v.scalar) {
    case ScalarType.STRING:
      return [`{ const k = `, s.sizeUtf8, `(${expr}); l.push(k); ${acc} += k + `, s.sizeVarint, `(k); }`];
    case ScalarType.BYTES:
      return [`{ const k = ${expr}.length; ${acc} += k + `, s.sizeVarint, `(k); }`];
    case ScalarType.INT32:
      return call(s.sizeInt32);
    case ScalarType.UINT32:
      return call(s.sizeVarint);
    case ScalarType.SINT32:
      return call(s.sizeSint32);
    case ScalarType.INT64:
      return call(s.sizeInt64, field);
    case ScalarType.UINT64:
      return call(s.sizeUint64, field);
    case ScalarType.SINT64:
      return call(s.sizeSint64, field);
    default:
      throw new Error(`no size for scalar type ${String(v.scalar)}`);
  }
}

/** Statement writing value `v` without its tag. */
export function writeValue(s: CodecSymbols, names: ReadonlyMap<DescMessage, string>, v: ValueKind, expr: string, field: string): Printable[] {
  if (v.kind === "message") return [`w.prefix(); ${fn(names, v.message, "write")}(w, ${expr});`];
  switch (v.scalar) {
    case ScalarType.STRING:
      return [`w.string(${expr});`];
    case ScalarType.BYTES:
      return [`w.bytes(`, s.toBytes, `(${expr}));`];
    case ScalarType.BOOL:
      return [`w.bool(${expr});`];
    case ScalarType.UINT32:
      return [`w.checkedUint32(${expr}, ${field});`];
    default:
      return [`w.${WRITER_METHOD[v.scalar]!}(${expr}, ${field});`];
  }
}

const WRITER_METHOD: Partial<Record<ScalarType, string>> = {
  [ScalarType.DOUBLE]: "double",
  [ScalarType.FLOAT]: "float",
  [ScalarType.INT64]: "int64",
  [ScalarType.UINT64]: "uint64",
  [ScalarType.INT32]: "int32",
  [ScalarType.FIXED64]: "fixed64",
  [ScalarType.FIXED32]: "fixed32",
  [ScalarType.SFIXED32]: "sfixed32",
  [ScalarType.SFIXED64]: "sfixed64",
  [ScalarType.SINT32]: "sint32",
  [ScalarType.SINT64]: "sint64",
};

/** Expression reading one scalar value (messages are read by statements, see readMessage). */
export function readScalar(v: ValueKind & { kind: "scalar" }): string {
  switch (v.scalar) {
    case ScalarType.STRING:
      return `r.string(${String(v.strict)})`;
    case ScalarType.BYTES:
      return "r.bytes()";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64: {
      const read = `r.${ScalarType[v.scalar].toLowerCase()}()`;
      return v.longAsString ? `String(${read})` : read;
    }
    default:
      return `r.${ScalarType[v.scalar].toLowerCase()}()`;
  }
}

/** The value a field of this kind has in a new message (scalars and enums only). */
export function zeroValue(s: CodecSymbols, field: DescField & { fieldKind: "scalar" | "enum" }): Printable {
  if (field.fieldKind === "enum") return String(field.enum.values[0]!.number);
  return scalarZero(s, field.scalar, field.longAsString);
}

export function scalarZero(s: CodecSymbols, scalar: ScalarType, longAsString: boolean): Printable {
  switch (scalar) {
    case ScalarType.STRING:
      return '""';
    case ScalarType.BOOL:
      return "false";
    case ScalarType.BYTES:
      return "new Uint8Array(0)";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? '"0"' : [s.protoInt64, ".zero"];
    default:
      return "0";
  }
}

/** Size in bytes of a tag. */
export function tagSize(no: number, wireType: number): number {
  const t = no * 8 + wireType;
  return t < 0x80 ? 1 : t < 0x4000 ? 2 : t < 0x200000 ? 3 : t < 0x10000000 ? 4 : 5;
}
