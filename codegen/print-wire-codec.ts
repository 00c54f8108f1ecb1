import type { DescField, DescFile, DescMessage, DescOneof } from "@bufbuild/protobuf";
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

/**
 * The frame kinds of a root message's oneof that a client sends and that it receives
 * (PROTOCOL.md: Ack, Ping and Pong go both ways). For such a root the plugin also prints
 * `encode<Name>FromClient`, which encodes only what a client sends, and `read<Name>FromServer`,
 * which reads only what a client receives, so that a client's bundle leaves out the encoders
 * of the server's frames and the readers of its own. Cases are proto field names.
 */
export const CLIENT_CASES: ReadonlyMap<string, { readonly oneof: string; readonly sends: readonly string[]; readonly receives: readonly string[] }> = new Map([
  [
    "protocast.v1.Envelope",
    {
      oneof: "frame",
      sends: ["hello", "resume", "call", "cancel", "subscribe", "unsubscribe", "publish", "ack", "ping", "pong", "auth_refresh"],
      receives: ["welcome", "resumed", "reply", "error", "subscribed", "unsubscribed", "event", "presence", "push", "ack", "ping", "pong", "auth_refreshed", "auth_expiring", "goaway"],
    },
  ],
]);

/** Restricts the printed codec of a root message to some cases of one of its oneofs. */
export interface CaseFilter {
  /** Appended to the names of the printed functions: "FromClient". */
  readonly suffix: string;
  readonly oneof: DescOneof;
  readonly cases: ReadonlySet<DescField>;
  /** Who sends the cases kept, for the encoder's error: "a client". */
  readonly sender: string;
}

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
  const halves = new Map(roots.map((m) => [m, clientHalves(m)]));
  for (const m of roots) printRoot(f, s, m, halves.get(m));
  for (const m of messages) {
    f.print(`// ${m.typeName}`);
    printWireEncoder(f, s, m, fieldsOf);
    printWireDecoder(f, s, m, fieldsOf);
    const half = halves.get(m);
    if (half === undefined) continue;
    f.print(`// ${m.typeName}, the cases a client sends and those it receives`);
    printWireEncoder(f, s, m, fieldsOf, half.sends);
    printWireDecoder(f, s, m, fieldsOf, half.receives);
  }
}

/** The client's halves of a root message listed in CLIENT_CASES; throws on a case the message lacks. */
function clientHalves(m: DescMessage): { sends: CaseFilter; receives: CaseFilter } | undefined {
  const spec = CLIENT_CASES.get(m.typeName);
  if (spec === undefined) return undefined;
  const oneof = m.oneofs.find((o) => o.name === spec.oneof);
  if (oneof === undefined) throw new Error(`the plain wire codec cannot print the client's half of ${m.typeName}: it has no oneof ${spec.oneof}`);
  const cases = (names: readonly string[]): Set<DescField> =>
    new Set(names.map((n) => oneof.fields.find((x) => x.name === n) ?? fail(`${m.typeName}.${spec.oneof} has no case ${n}`)));
  return {
    sends: { suffix: "FromClient", oneof, cases: cases(spec.sends), sender: "a client" },
    receives: { suffix: "FromServer", oneof, cases: cases(spec.receives), sender: "the server" },
  };
}

function fail(what: string): never {
  throw new Error(`the plain wire codec cannot print the client's half: ${what}`);
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
function printRoot(f: GeneratedFile, s: WireSymbols, m: DescMessage, half: { sends: CaseFilter; receives: CaseFilter } | undefined): void {
  const name = plainName(m);
  printEncode(f, s, m, "", [
    `Encodes one ${name} into a new array of exactly its size, which may be a view into a shared block`,
    "(see runtime/wire/allocate.ts). A number its field cannot carry throws the runtime's",
    "\"unencodable_envelope\" error, naming the field, before anything is written.",
  ]);
  printRead(f, s, m, "", [
    `Reads one ${name} from the reader's buffer up to \`end\`: every field holds its value or its`,
    "default, absent messages are undefined, unknown fields are skipped, and a field that occurs",
    "again merges as protobuf does (scalars: the last wins; messages: merged; lists: appended).",
  ]);
  if (half === undefined) return;
  const list = (c: CaseFilter): string => [...c.cases].map((x) => x.localName).join(", ");
  printEncode(f, s, m, half.sends.suffix, wrap([
    `encode${name} for a client: it encodes only the cases of ${half.sends.oneof.name} a client sends (${list(half.sends)})`,
    "and throws \"unencodable_envelope\" on any other, so that a client's bundle holds no encoder of the server's.",
  ]));
  printRead(f, s, m, half.receives.suffix, wrap([
    `read${name} for a client: it reads only the cases of ${half.receives.oneof.name} the server sends (${list(half.receives)}).`,
    `Any other case is skipped unread and leaves ${half.receives.oneof.localName} undefined, as a case of an unknown kind does.`,
  ]));
}

/** Doc text in lines of at most 96 characters. */
function wrap(paragraph: string[]): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of paragraph.join(" ").split(" ")) {
    if (line !== "" && line.length + 1 + word.length > 96) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

function printEncode(f: GeneratedFile, s: WireSymbols, m: DescMessage, suffix: string, doc: string[]): void {
  const name = plainName(m);
  f.print(f.jsDoc(doc.join("\n")));
  f.print(`export function encode${name}${suffix}(m: ${name}): Uint8Array {`);
  f.print("  lengthsUsed = 0;");
  f.print(`  const size = size$${name}${suffix}(m);`);
  f.print("  const buf = ", s.allocate, "(size);");
  f.print("  lengthsRead = 0;");
  f.print(`  const end = write$${name}${suffix}(buf, 0, m);`);
  f.print("  // Unreachable unless the passes disagree; never hand out a corrupt encoding.");
  f.print("  if (end !== size) throw ", s.sizeMismatch, `(${JSON.stringify(m.typeName)}, end, size);`);
  f.print("  return buf;");
  f.print("}");
  f.print();
}

function printRead(f: GeneratedFile, s: WireSymbols, m: DescMessage, suffix: string, doc: string[]): void {
  const name = plainName(m);
  f.print(f.jsDoc(doc.join("\n")));
  f.print(`export function read${name}${suffix}(r: `, s.WireReader, `, end: number): ${name} {`);
  f.print(`  return read$${name}${suffix}(r, end, new$${name}());`);
  f.print("}");
  f.print();
}
