import type { DescMessage } from "@bufbuild/protobuf";
import { problemAt, type Problem } from "./problem.js";

/**
 * Resolves MessageRules.conflation_key of `message` to the TypeScript name of the field.
 * Returns "" when no key is declared, and undefined after adding a problem when the key does
 * not name a singular scalar field of the message.
 */
export function resolveConflationKey(message: DescMessage, key: string, problems: Problem[]): string | undefined {
  if (key === "") return "";
  const field = message.fields.find((f) => f.name === key);
  if (field === undefined) {
    problems.push(
      problemAt(
        message,
        `conflation_key "${key}" is not a field of ${message.typeName}.`,
        `set conflation_key to one of its scalar fields (${scalarFieldNames(message)}), or add the field.`,
      ),
    );
    return undefined;
  }
  if (field.fieldKind !== "scalar") {
    problems.push(
      problemAt(
        message,
        `conflation_key "${key}" names a ${field.fieldKind} field; a conflation key must be a singular scalar field.`,
        `set conflation_key to one of its scalar fields (${scalarFieldNames(message)}).`,
      ),
    );
    return undefined;
  }
  return field.localName;
}

function scalarFieldNames(message: DescMessage): string {
  const names = message.fields.filter((f) => f.fieldKind === "scalar").map((f) => f.name);
  return names.length === 0 ? "it has none" : names.join(", ");
}
