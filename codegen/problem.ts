import type { DescField, DescFile, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";

/** A Protocast option that cannot be turned into code, with the change that fixes it. */
export interface Problem {
  /** Proto file with its line and column when known, such as "acme/chat/v1/chat.proto:31:3". */
  readonly where: string;
  /** Full name of the element, such as "acme.chat.v1.ChatService.RoomEvents". */
  readonly element: string;
  readonly message: string;
  /** What to change in the .proto file. */
  readonly fix: string;
}

/** An element of a proto file that a problem can point at. */
export type ProblemSite = DescService | DescMethod | DescMessage | DescField;

/** Builds a problem located at `site`. */
export function problemAt(site: ProblemSite, message: string, fix: string): Problem {
  return { where: locate(site), element: fullName(site), message, fix };
}

/** One problem per line, in a form editors and CI logs can link to. */
export function formatProblem(p: Problem): string {
  return `${p.where}: ${p.element}: ${p.message} Fix: ${p.fix}`;
}

/** Thrown once per run with every problem found, so one regeneration shows them all. */
export class OptionProblemsError extends Error {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super([`${count} with Protocast options:`, ...problems.map((p) => `  ${formatProblem(p)}`)].join("\n"));
    this.name = "OptionProblemsError";
    this.problems = problems;
  }
}

function fullName(site: ProblemSite): string {
  switch (site.kind) {
    case "rpc":
    case "field":
      return `${site.parent.typeName}.${site.name}`;
    default:
      return site.typeName;
  }
}

function fileOf(site: ProblemSite): DescFile {
  switch (site.kind) {
    case "rpc":
    case "field":
      return site.parent.file;
    default:
      return site.file;
  }
}

// Source positions come from the request's source code info. Descriptors embedded in
// generated code carry none, so the file name alone is the fallback.
function locate(site: ProblemSite): string {
  const file = fileOf(site);
  const name = `${file.name}.proto`;
  const path = getComments(site).sourcePath;
  const location = file.proto.sourceCodeInfo?.location.find(
    (l) => l.path.length === path.length && l.path.every((v, i) => v === path[i]),
  );
  const line = location?.span[0];
  const column = location?.span[1];
  return line === undefined || column === undefined ? name : `${name}:${line + 1}:${column + 1}`;
}
