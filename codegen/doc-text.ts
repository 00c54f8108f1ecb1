import type { DescField, DescMethod, DescService } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";

/**
 * Text for a JSDoc block: the leading proto comment of `desc` (without the space that
 * follows "//"), then each extra paragraph, then @deprecated when the proto says so.
 */
export function docText(desc: DescService | DescMethod | DescField, ...paragraphs: string[]): string {
  const comment = (getComments(desc).leading ?? "")
    .replace(/\n$/, "")
    .split("\n")
    .map((line) => (line.startsWith(" ") ? line.slice(1) : line))
    .join("\n")
    .trim();
  const parts = [comment, ...paragraphs].filter((p) => p !== "");
  if (desc.deprecated) parts.push("@deprecated");
  return parts.join("\n\n");
}
