import { ScalarType, type DescField, type DescMessage, type DescOneof } from "@bufbuild/protobuf";

// The field model of the plain wire codec (print-wire-codec.ts): the few value kinds a protocol
// schema such as protocast/v1/envelope.proto uses, each with its TypeScript type, its zero
// value and its wire type. Anything else is refused when the codec is generated, so that a
// field added to the schema is either printed correctly or named as unsupported, never
// mishandled.

/** How one field of a plain message is held and put on the wire. */
export type WireKind =
  /** uint32: a number in [0, 2^32 - 1]. */
  | "uint32"
  /** int32 or an open enum: a number in [-2^31, 2^31 - 1]; negative values take 10 bytes. */
  | "int32"
  /** uint64 held as a number, which the decoder keeps below 2^53 (DESIGN.md: number over bigint). */
  | "uint53"
  | "bool"
  | "string"
  /** Decoded as a view into the input, never copied. */
  | "bytes"
  /** A singular message field: present or undefined. */
  | "message"
  /** A repeated message field. */
  | "messages";

/** A field together with what the printers need to know about it. */
export interface WireField {
  readonly field: DescField;
  readonly kind: WireKind;
  /** The message of a message or messages field. */
  readonly message: DescMessage | undefined;
  /** Label used in error messages, "Call.method". */
  readonly label: string;
}

/** google.protobuf.FeatureSet.FieldPresence.IMPLICIT. */
const IMPLICIT = 2;

/** Classifies a field, or throws an Error naming it when the plain codec cannot hold it. */
export function wireField(field: DescField): WireField {
  const label = `${field.parent.name}.${field.localName}`;
  const refuse = (what: string): never => {
    throw new Error(`the plain wire codec cannot print ${field.parent.typeName}.${field.name}: ${what}`);
  };
  switch (field.fieldKind) {
    case "scalar": {
      if (field.presence !== IMPLICIT) refuse("explicit presence (proto3 optional) is not supported");
      const kind = SCALAR_KINDS.get(field.scalar);
      if (kind === undefined) return refuse(`scalar type ${ScalarType[field.scalar]} is not supported`);
      if (field.oneof !== undefined) refuse("scalars in a oneof are not supported");
      return { field, kind, message: undefined, label };
    }
    case "enum":
      if (!field.enum.open) refuse("closed enums are not supported");
      if (field.presence !== IMPLICIT || field.oneof !== undefined) refuse("enums with explicit presence are not supported");
      return { field, kind: "int32", message: undefined, label };
    case "message":
      if (field.delimitedEncoding) refuse("the group encoding is not supported");
      return { field, kind: "message", message: field.message, label };
    case "list":
      if (field.listKind !== "message") return refuse("repeated scalars are not supported");
      return { field, kind: "messages", message: field.message, label };
    case "map":
      return refuse("maps are not supported");
  }
}

const SCALAR_KINDS = new Map<ScalarType, WireKind>([
  [ScalarType.UINT32, "uint32"],
  [ScalarType.INT32, "int32"],
  [ScalarType.UINT64, "uint53"],
  [ScalarType.BOOL, "bool"],
  [ScalarType.STRING, "string"],
  [ScalarType.BYTES, "bytes"],
]);

/** Wire type of a field of this kind. */
export function wireTypeOfKind(kind: WireKind): number {
  return kind === "string" || kind === "bytes" || kind === "message" || kind === "messages" ? 2 : 0;
}

/** The bytes of a field's tag, as hex literals: field 17 length-delimited is ["0x8a", "0x01"]. */
export function tagBytes(no: number, wireType: number): string[] {
  const out: string[] = [];
  let t = no * 8 + wireType;
  while (t > 0x7f) {
    out.push(hex((t & 0x7f) | 0x80));
    t >>>= 7;
  }
  out.push(hex(t));
  return out;
}

/** The tag as the decoder's WireReader.tag() returns it, as a hex literal. */
export function tagValue(no: number, wireType: number): string {
  return hex(no * 8 + wireType);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

/**
 * TypeScript name of a message's plain shape: its proto name, except where that would shadow
 * an ECMAScript global inside the generated module (protocast.v1.Error becomes ErrorFrame).
 */
export function plainName(m: DescMessage): string {
  return SHADOWED_GLOBALS.has(m.name) ? `${m.name}Frame` : m.name;
}

const SHADOWED_GLOBALS = new Set(["Array", "Boolean", "Date", "Error", "Function", "Map", "Number", "Object", "Promise", "RegExp", "Set", "String", "Symbol"]);

/** Name of a oneof's union type: "frame" becomes Frame. */
export function oneofTypeName(o: DescOneof): string {
  return o.localName.charAt(0).toUpperCase() + o.localName.slice(1);
}

/** The fields of a oneof must be numbered next to each other, so one switch writes them in number order. */
export function checkOneofContiguous(message: DescMessage, o: DescOneof): void {
  const numbers = message.fields.map((f) => f.number).sort((a, b) => a - b);
  const own = new Set(o.fields.map((f) => f.number));
  const first = numbers.findIndex((n) => own.has(n));
  for (let i = first; i < first + own.size; i++) {
    if (!own.has(numbers[i]!)) {
      throw new Error(`the plain wire codec cannot print ${message.typeName}: field ${String(numbers[i])} lies among the fields of oneof ${o.name}`);
    }
  }
}

/**
 * The messages a file's codec covers, in declaration order, nested ones after their parent.
 * Throws when one contains itself: the plain decoder has no depth limit, so the schema must
 * bound the nesting.
 */
export function fileMessages(messages: readonly DescMessage[]): DescMessage[] {
  const out: DescMessage[] = [];
  const visit = (m: DescMessage): void => {
    out.push(m);
    m.nestedMessages.forEach(visit);
  };
  messages.forEach(visit);
  for (const m of out) checkNotRecursive(m, []);
  return out;
}

function checkNotRecursive(m: DescMessage, path: readonly DescMessage[]): void {
  if (path.includes(m)) {
    throw new Error(`the plain wire codec cannot print ${m.typeName}: it contains itself (${[...path, m].map((x) => x.name).join(" > ")})`);
  }
  for (const f of m.fields) {
    if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) checkNotRecursive(f.message, [...path, m]);
  }
}
