import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import type { ServiceNames } from "./generated-names.js";
import type { ResolvedService } from "./resolved-rules.js";

/**
 * Prints the resolved rules of every method as one `as const` object, and a type of the same
 * name. The object is what defineService receives at run time; the type gives each
 * ChannelDef and EventDef its literal rules.
 */
export function printRules(f: GeneratedFile, { service, methods }: ResolvedService, names: ServiceNames): void {
  f.print("const ", names.rules, " = {");
  for (const { method, rules } of methods) {
    f.print("  ", method.localName, ": ", literal(f, rules), ",");
  }
  f.print("} as const;");
  f.print();
  f.print(f.jsDoc(`Resolved options of every ${service.name} method, as literal types.`));
  f.print(f.export("type", names.rules), " = typeof ", names.rules, ";");
  f.print();
}

// Keys are protobuf-es local names, which are always valid identifiers; values are strings,
// numbers, booleans or plain objects of them (see resolved-rules.ts).
function literal(f: GeneratedFile, value: unknown): Printable {
  switch (typeof value) {
    case "string":
      return f.string(value);
    case "number":
    case "boolean":
      return value;
    case "object": {
      if (value === null) break;
      const entries = Object.entries(value);
      if (entries.length === 0) return "{}";
      const parts: Printable[] = ["{ "];
      entries.forEach(([key, v], i) => parts.push(i > 0 ? ", " : "", key, ": ", literal(f, v)));
      parts.push(" }");
      return parts;
    }
  }
  throw new Error(`cannot print rule value ${String(value)}`);
}
