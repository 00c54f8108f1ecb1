import type { DescFile, DescMessage } from "@bufbuild/protobuf";
import { getComments, type GeneratedFile, type ImportSymbol } from "@bufbuild/protoplugin";
import { printWireDecoder } from "./print-wire-read.js";
import { printWireEncoder } from "./print-wire-write.js";
import { checkOneofContiguous, fileMessages, oneofTypeName, plainName, wireField, type WireField } from "./wire-fields.js";

/**
 * Where the runtime's wire layer lives, relative to the plugin's output directory. The plain
 * wire codec is the runtime's own envelope codec: it is generated inside the Protocast
 * repository (buf.gen.yaml writes to generated/) and imports the runtime's byte-level reader
 * and writer directly, never the public entry, which itself depends on the codec.
 */
export const WIRE_RUNTIME_FROM_OUTPUT = "../runtime/wire/";

/** Proto files whose plain wire codec the plugin prints, and the name of the output. */
export const WIRE_CODEC_FILES: ReadonlyMap<string, string> = new Map([["protocast/v1/envelope", "protocast/v1/envelope_codec.ts"]]);

/** Runtime symbols printed code refers to; protoplugin imports only those printed. */
export type WireSymbols = ReturnType<typeof wireSymbols>;

function wireSymbols(f: GeneratedFile) {
  const from = (module: string) => (name: string, typeOnly = false): ImportSymbol => f.import(name, `${WIRE_RUNTIME_FROM_OUTPUT}${module}.js`, typeOnly);
  const writer = from("writer");
  return {
    WireReader: from("reader")("WireReader", true),
    allocate: from("allocate")("allocate"),
    unencodable: from("wire-errors")("unencodable"),
    sizeMismatch: from("wire-errors")("sizeMismatch"),
    varintSize: writer("varintSize"),
    uint32FieldSize: writer("uint32FieldSize"),
    uint53FieldSize: writer("uint53FieldSize"),
    int32FieldSize: writer("int32FieldSize"),
    stringFieldSize: writer("stringFieldSize"),
    bytesFieldSize: writer("bytesFieldSize"),
    writeTag: writer("writeTag"),
    writeVarint: writer("writeVarint"),
    writeNegativeInt32: writer("writeNegativeInt32"),
    writeString: writer("writeString"),
    writeBytes: writer("writeBytes"),
    writeVarintField: writer("writeVarintField"),
    writeInt32Field: writer("writeInt32Field"),
    writeStringField: writer("writeStringField"),
    writeBytesField: writer("writeBytesField"),
  };
}

/** Fields of each message, classified once. */
export type FieldsOf = (m: DescMessage) => readonly WireField[];

/**
 * Prints the plain wire codec of a proto file: a TypeScript shape per message (camelCase
 * fields as protobuf-es names them, 64-bit fields as numbers, oneofs as { case, value }, no
 * $typeName), and a specialised encoder and decoder. For each message that no other message of
 * the file holds (Envelope), `encode<Name>` and `read<Name>` are exported; the rest of the
 * codec stays private to the file.
 */
export function printWireCodec(f: GeneratedFile, file: DescFile): void {
  const messages = fileMessages(file.messages);
  const inFile = new Set(messages);
  const fields = new Map<DescMessage, WireField[]>();
  const held = new Set<DescMessage>();
  for (const m of messages) {
    const list = m.fields.map(wireField).sort((a, b) => a.field.number - b.field.number);
    for (const w of list) {
      if (w.message === undefined) continue;
      if (!inFile.has(w.message)) throw new Error(`the plain wire codec cannot print ${w.field.parent.typeName}.${w.field.name}: ${w.message.typeName} is declared in another file`);
      held.add(w.message);
    }
    for (const o of m.oneofs) checkOneofContiguous(m, o);
    fields.set(m, list);
  }
  const fieldsOf: FieldsOf = (m) => fields.get(m)!;
  const roots = messages.filter((m) => !held.has(m));
  const s = wireSymbols(f);

  f.print("// Plain shapes and the binary codec of every message of the file. The encoder writes the bytes of");
  f.print("// protobuf-es's toBinary for the same content, and the decoder reads what its fromBinary reads,");
  f.print("// with 64-bit fields as numbers below 2^53; test/wire holds them to that by property. Decoding");
  f.print("// errors are the runtime's typed envelope errors (runtime/wire/wire-errors.ts). A oneof with no");
  f.print("// case on the wire is left undefined by the decoder, for the caller to judge.");
  f.print();
  for (const m of messages) printShape(f, m, fieldsOf);
  f.print("const EMPTY_BYTES = new Uint8Array(0);");
  f.print();
  f.print("// Lengths of nested messages, recorded by the size pass in the order the write pass meets them,");
  f.print("// so that every length prefix is written once at its final size. Encoding is synchronous, so");
  f.print("// one log serves every call.");
  f.print("const lengths: number[] = [];");
  f.print("let lengthsUsed = 0;");
  f.print("let lengthsRead = 0;");
  f.print();
  if ([...fields.values()].some((list) => list.some((w) => w.message !== undefined))) {
    f.print("/** Logs a nested message's length `k` in slot `i`; returns the bytes of its length prefix and body. */");
    f.print("function logLength(i: number, k: number): number {");
    f.print("  lengths[i] = k;");
    f.print("  return ", s.varintSize, "(k) + k;");
    f.print("}");
    f.print();
    f.print("/** Writes a nested message's tag and the length its size pass logged. */");
    f.print("function writeLengthPrefix(buf: Uint8Array, pos: number, tag: number): number {");
    f.print("  return ", s.writeVarint, "(buf, ", s.writeTag, "(buf, pos, tag), lengths[lengthsRead++]!);");
    f.print("}");
    f.print();
  }
  for (const m of roots) printRoot(f, s, m);
  for (const m of messages) {
    f.print(`// ${m.typeName}`);
    printWireEncoder(f, s, m, fieldsOf);
    printWireDecoder(f, s, m, fieldsOf);
  }
}

/** The interface of a message, its oneof unions, and a constant of the field number of each case. */
function printShape(f: GeneratedFile, m: DescMessage, fieldsOf: FieldsOf): void {
  const name = plainName(m);
  const doc = commentText(getComments(m).leading);
  f.print(f.jsDoc(doc === "" ? m.typeName : `${doc}\n\n${m.typeName}`));
  f.print(`export interface ${name} {`);
  for (const member of m.members) {
    if (member.kind === "oneof") {
      f.print(`  ${member.localName}: ${oneofTypeName(member)};`);
      continue;
    }
    const w = fieldsOf(m).find((x) => x.field === member)!;
    const comment = commentText(getComments(member).leading);
    if (comment !== "") f.print(f.jsDoc(comment, "  "));
    // A message field outside a oneof may be left out when building a message: absent and
    // undefined encode alike, so a field added to the schema later needs no change where
    // frames are built. The decoder still sets it (to undefined when absent).
    const optional = w.kind === "message" && w.field.oneof === undefined ? "?" : "";
    f.print(`  ${member.localName}${optional}: ${tsType(w)};`);
  }
  f.print("}");
  f.print();
  for (const o of m.oneofs) {
    const type = oneofTypeName(o);
    f.print(f.jsDoc(`The cases of ${m.typeName}.${o.name}, keyed by field name in camelCase.`));
    f.print(`export type ${type} =`);
    o.fields.forEach((field, i) => {
      const w = fieldsOf(m).find((x) => x.field === field)!;
      f.print(`  | { case: ${JSON.stringify(field.localName)}; value: ${tsType(w)} }${i === o.fields.length - 1 ? ";" : ""}`);
    });
    f.print();
    f.print(`export type ${type}Case = ${type}["case"];`);
    f.print();
    f.print(f.jsDoc(`Field number of each case of ${m.typeName}.${o.name}.`));
    f.print(`export const ${o.name.toUpperCase()}_FIELD: Readonly<Record<${type}Case, number>> = {`);
    for (const field of o.fields) f.print(`  ${field.localName}: ${String(field.number)},`);
    f.print("};");
    f.print();
  }
}

/** A proto comment as JSDoc text: each line trimmed of the space after `//`. */
function commentText(comment: string | undefined): string {
  return (comment ?? "").split("\n").map((line) => line.trim()).join("\n").trim();
}

function tsType(w: WireField): string {
  switch (w.kind) {
    case "uint32":
    case "int32":
    case "uint53":
      return "number";
    case "bool":
      return "boolean";
    case "string":
      return "string";
    case "bytes":
      return "Uint8Array";
    case "message":
      // A member of a oneof is present whenever its case is selected.
      return w.field.oneof !== undefined ? plainName(w.message!) : `${plainName(w.message!)} | undefined`;
    case "messages":
      return `${plainName(w.message!)}[]`;
  }
}

/** The exported entry points of a message no other message holds. */
function printRoot(f: GeneratedFile, s: WireSymbols, m: DescMessage): void {
  const name = plainName(m);
  f.print(f.jsDoc([
    `Encodes one ${name} into a new array of exactly its size, which may be a view into a shared block`,
    "(see runtime/wire/allocate.ts). A number its field cannot carry throws the runtime's",
    "\"unencodable_envelope\" error, naming the field, before anything is written.",
  ].join("\n")));
  f.print(`export function encode${name}(m: ${name}): Uint8Array {`);
  f.print("  lengthsUsed = 0;");
  f.print(`  const size = size$${name}(m);`);
  f.print("  const buf = ", s.allocate, "(size);");
  f.print("  lengthsRead = 0;");
  f.print(`  const end = write$${name}(buf, 0, m);`);
  f.print("  // Unreachable unless the passes disagree; never hand out a corrupt encoding.");
  f.print("  if (end !== size) throw ", s.sizeMismatch, `(${JSON.stringify(m.typeName)}, end, size);`);
  f.print("  return buf;");
  f.print("}");
  f.print();
  f.print(f.jsDoc([
    `Reads one ${name} from the reader's buffer up to \`end\`: every field holds its value or its`,
    "default, absent messages are undefined, unknown fields are skipped, and a field that occurs",
    "again merges as protobuf does (scalars: the last wins; messages: merged; lists: appended).",
  ].join("\n")));
  f.print(`export function read${name}(r: `, s.WireReader, `, end: number): ${name} {`);
  f.print(`  return read$${name}(r, end, new$${name}());`);
  f.print("}");
  f.print();
}
