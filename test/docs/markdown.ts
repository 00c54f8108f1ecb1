/** Just enough Markdown for the documentation tests: sections and pipe tables. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const read = (path: string): string => readFileSync(ROOT + path, "utf8");

/** The text under the heading that starts with `title` ("### 3.3 "), up to the next heading of its level or above. */
export function section(md: string, title: string): string {
  const lines = md.split("\n");
  const start = lines.findIndex((l) => /^#{2,4} /.test(l) && l.replace(/^#+ /, "").startsWith(title));
  if (start < 0) throw new Error(`no section "${title}"`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  let end = start + 1;
  while (end < lines.length && !(/^#+ /.test(lines[end]!) && /^#+/.exec(lines[end]!)![0].length <= level)) end++;
  return lines.slice(start + 1, end).join("\n");
}

/** The rows (cells trimmed) of the first table in `text` whose header row starts with `header`. */
export function table(text: string, header: string): string[][] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("|") && l.replace(/^\|\s*/, "").startsWith(header));
  if (start < 0) throw new Error(`no table with header "${header}"`);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith("|"); i++) {
    rows.push(lines[i]!.replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim()));
  }
  return rows;
}

/** Words in backticks. */
export const ticked = (cell: string): string[] => Array.from(cell.matchAll(/`([^`]+)`/g), (m) => m[1]!);

const UNIT: Record<string, number> = { bytes: 1, KiB: 1024, MiB: 1024 * 1024, ms: 1, s: 1000, min: 60_000, h: 3_600_000 };

/** Every number in a cell, in bytes or milliseconds where a unit follows ("64 KiB" = 65536, "5 s" = 5000). */
export function quantities(cell: string): number[] {
  return Array.from(cell.matchAll(/(\d[\d,]*)\s*(bytes|KiB|MiB|ms|min|s|h)?(?![A-Za-z])/g), (m) => Number(m[1]!.replace(/,/g, "")) * (UNIT[m[2] ?? ""] ?? 1));
}
