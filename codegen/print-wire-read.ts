import type { DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import { declared } from "./print-codec-read.js";
import type { CaseFilter, FieldsOf, WireSymbols } from "./print-wire-codec.js";
import { oneofTypeName, plainName, tagValue, wireTypeOfKind, type WireField } from "./wire-fields.js";

/**
 * Prints `new$X()` and `read$X(r, end, m)` for one message of the plain wire codec. `new$X`
 * builds the message with every default (absent messages undefined, empty lists, a oneof
 * without a case undefined); `read$X` switches on the whole tag, (field number << 3) | wire
 * type, and merges into `m` as protobuf's fromBinary does. Every read is bounded by `end`, the
 * end of the message being read; a declared field with another wire type, a group and every
 * other malformation end in the reader's typed error. With `only`, only `read$X<suffix>` is
 * printed, and it reads only the cases `only` keeps of its oneof: another case is skipped
 * unread and clears the oneof, as a case does that replaces an earlier one.
 */
export function printWireDecoder(f: GeneratedFile, s: WireSymbols, m: DescMessage, fieldsOf: FieldsOf, only?: CaseFilter): void {
  const name = plainName(m);
  const fields = fieldsOf(m);
  if (only !== undefined) {
    printRead(f, s, m, fields, only);
    return;
  }
  const members: string[] = [];
  for (const member of m.members) {
    if (member.kind === "oneof") members.push(`${member.localName}: undefined as unknown as ${oneofTypeName(member)}`);
    else members.push(`${member.localName}: ${zero(fields.find((w) => w.field === member)!)}`);
  }
  f.print(`function new$${name}(): ${name} {`);
  f.print(`  return { ${members.join(", ")} };`);
  f.print("}");
  f.print();
  printRead(f, s, m, fields, undefined);
}

function printRead(f: GeneratedFile, s: WireSymbols, m: DescMessage, fields: readonly WireField[], only: CaseFilter | undefined): void {
  const name = plainName(m);
  const skipped = only === undefined ? [] : fields.filter((w) => w.field.oneof === only.oneof && !only.cases.has(w.field));
  f.print(`function read$${name}${only?.suffix ?? ""}(r: `, s.WireReader, `, end: number, m: ${name}): ${name} {`);
  f.print("  while (r.pos < end) {");
  f.print("    const t = r.tag(end);");
  f.print("    switch (t) {");
  for (const w of fields) if (!skipped.includes(w)) f.print("      ", ...readCase(w));
  for (const w of skipped) f.print(`      case ${tagValue(w.field.number, wireTypeOfKind(w.kind))}:`);
  if (only !== undefined && skipped.length > 0) {
    f.print(`        m.${only.oneof.localName} = undefined as unknown as ${oneofTypeName(only.oneof)};`);
    f.print("        r.pos = r.limit(end);");
    f.print("        break;");
  }
  f.print(`      default: r.skip(t, end, ${JSON.stringify(m.name)}, ${declared(fields.map((w) => w.field))});`);
  f.print("    }");
  f.print("  }");
  f.print("  return m;");
  f.print("}");
  f.print();
}

function zero(w: WireField): string {
  switch (w.kind) {
    case "uint32":
    case "int32":
    case "uint53":
      return "0";
    case "bool":
      return "false";
    case "string":
      return '""';
    case "bytes":
      // One shared empty array: nothing can be written into a zero-length view.
      return "EMPTY_BYTES";
    case "message":
      return "undefined";
    case "messages":
      return "[]";
  }
}

function readCase(w: WireField): Printable[] {
  const head = `case ${tagValue(w.field.number, wireTypeOfKind(w.kind))}: `;
  const into = `m.${w.field.localName}`;
  const label = JSON.stringify(w.label);
  switch (w.kind) {
    case "uint32":
      return [head, `${into} = r.uint32(end); break;`];
    case "int32":
      return [head, `${into} = r.int32(end); break;`];
    case "uint53":
      return [head, `${into} = r.uint53(end); break;`];
    case "bool":
      return [head, `${into} = r.bool(end); break;`];
    case "string":
      return [head, `${into} = r.string(end, ${label}); break;`];
    case "bytes":
      return [head, `${into} = r.bytes(end); break;`];
    case "messages": {
      const type = plainName(w.message!);
      return [head, `{ const a = ${into}; r.checkCount(a.length, ${label}); const e = r.limit(end); a.push(read$${type}(r, e, new$${type}())); break; }`];
    }
    case "message": {
      const type = plainName(w.message!);
      const o = w.field.oneof;
      if (o === undefined) return [head, `{ const e = r.limit(end); ${into} = read$${type}(r, e, ${into} ?? new$${type}()); break; }`];
      // The same case again merges into the earlier value; another case replaces it.
      const kind = JSON.stringify(w.field.localName);
      return [
        head,
        `{ const e = r.limit(end); const o = m.${o.localName} as ${oneofTypeName(o)} | undefined; `,
        `m.${o.localName} = { case: ${kind}, value: read$${type}(r, e, o !== undefined && o.case === ${kind} ? o.value : new$${type}()) }; break; }`,
      ];
    }
  }
}
