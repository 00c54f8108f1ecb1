import { getOption, hasOption, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { resolveConflationKey } from "./conflation-key.js";
import { checkGeneratedNames } from "./generated-names.js";
import { findOptionExtensions } from "./option-extensions.js";
import type { Problem } from "./problem.js";
import type { ResolvedService } from "./resolved-rules.js";
import { resolveService } from "./resolve-service.js";

/** The services of one proto file, ready to print. */
export interface ResolvedFile {
  readonly file: DescFile;
  readonly services: readonly ResolvedService[];
}

/**
 * Resolves the options of every service in `files` (the files to generate); `allFiles` also
 * holds their imports. Problems of all files come back together so one run reports them all;
 * print nothing when there is any.
 */
export function resolveSchema(
  files: readonly DescFile[],
  allFiles: readonly DescFile[],
): { readonly files: readonly ResolvedFile[]; readonly problems: readonly Problem[] } {
  const ext = findOptionExtensions(allFiles);
  const problems: Problem[] = [];
  const keys = new Map<DescMessage, string | undefined>();
  // Memoised so that a message used by several channels is checked, and reported, once.
  const conflationKeyOf = (message: DescMessage): string | undefined => {
    if (keys.has(message)) return keys.get(message);
    const key = ext !== undefined && hasOption(message, ext.message) ? resolveConflationKey(message, getOption(message, ext.message).conflationKey, problems) : "";
    keys.set(message, key);
    return key;
  };
  const resolved: ResolvedFile[] = [];
  for (const file of files) {
    const services: ResolvedService[] = [];
    for (const service of file.services) {
      const s = resolveService(service, ext, conflationKeyOf, problems);
      if (s !== undefined) services.push(s);
    }
    checkGeneratedNames(services, problems);
    // A key on a message that no channel uses yet is still checked where it is declared.
    for (const type of nestedTypes(file)) {
      if (type.kind === "message") conflationKeyOf(type);
    }
    if (file.services.length > 0) resolved.push({ file, services });
  }
  return { files: resolved, problems };
}
