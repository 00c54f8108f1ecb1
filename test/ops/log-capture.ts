/** A pino logger whose lines land in an array, parsed, plus the raw text for leak checks. */
import pino from "pino";

export interface CapturedLogs {
  readonly logger: pino.Logger;
  readonly lines: Record<string, unknown>[];
  /** Everything written, as written. */
  text(): string;
}

export function captureLogs(): CapturedLogs {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write(chunk: string) {
        raw.push(chunk);
        lines.push(JSON.parse(chunk) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, text: () => raw.join("") };
}
