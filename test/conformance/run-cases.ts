/** Runs conformance cases against a URL, a few at a time, and reports one line per case. */
import { randomBytes } from "node:crypto";
import { cases as allCases, type Case } from "./cases.js";

export interface CaseResult {
  readonly case: Case;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}

/** How a result is printed: status, section, title, and why it failed. */
export function formatResult(r: CaseResult): string {
  const head = `${r.ok ? "ok  " : "FAIL"}  §${r.case.section.padEnd(5)} ${r.case.title} (${r.ms} ms)`;
  return r.ok ? head : `${head}\n        ${r.error ?? ""}`;
}

export async function runCases(
  url: string,
  options: { concurrency?: number; cases?: readonly Case[]; timeoutMs?: number; onResult?: (r: CaseResult) => void } = {},
): Promise<CaseResult[]> {
  const list = options.cases ?? allCases;
  const results: CaseResult[] = new Array(list.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      const c = list[i]!;
      const name = `conf-${randomBytes(5).toString("hex")}`;
      const started = Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          c.run({ url, name }),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("case timed out")), options.timeoutMs ?? 15_000))),
        ]);
        results[i] = { case: c, ok: true, ms: Date.now() - started };
      } catch (e) {
        results[i] = { case: c, ok: false, ms: Date.now() - started, error: e instanceof Error ? e.message : String(e) };
      } finally {
        clearTimeout(timer);
      }
      options.onResult?.(results[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, worker));
  return results;
}
