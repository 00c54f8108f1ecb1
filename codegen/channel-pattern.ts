/** One "/"-separated part of a channel pattern. */
export type PatternSegment = { readonly literal: string } | { readonly variable: string };

/** A channel name pattern such as "org/{org_id}/doc/{doc_id}", checked and split. */
export interface ChannelPattern {
  readonly source: string;
  readonly segments: readonly PatternSegment[];
  /** Field names of the variables, in pattern order. */
  readonly variables: readonly string[];
}

/** Why a pattern is malformed, and how to write it instead. */
export interface PatternIssue {
  readonly message: string;
  readonly fix: string;
}

export type PatternResult = { readonly ok: true; readonly pattern: ChannelPattern } | { readonly ok: false; readonly issues: readonly PatternIssue[] };

// The runtime (runtime/service/pattern.ts) recognises a variable segment with this same
// expression; anything else it treats as a literal, so both sides must agree.
const VARIABLE = /^\{([a-z][a-z0-9_]*)\}$/;
// Literal segments stay within characters that need no escaping in URLs, logs and broker
// subjects, so a channel name means the same thing everywhere it travels.
const LITERAL = /^[A-Za-z0-9._-]+$/;

const EXAMPLE = `such as "room/{room_id}" or "org/{org_id}/doc/{doc_id}"`;

/**
 * Parses a channel pattern: literal segments and {field} variables separated by "/".
 * Reports every issue found rather than the first.
 */
export function parseChannelPattern(source: string): PatternResult {
  if (source === "") {
    return fail({ message: "the channel has no pattern.", fix: `set pattern to literal segments and {field} variables separated by "/", ${EXAMPLE}.` });
  }
  const issues: PatternIssue[] = [];
  if (source.startsWith("/") || source.endsWith("/")) {
    issues.push({ message: `pattern "${source}" starts or ends with "/".`, fix: `remove the leading and trailing "/"; a pattern is relative, ${EXAMPLE}.` });
  }
  const parts = source.split("/");
  const inner = parts.slice(source.startsWith("/") ? 1 : 0, source.endsWith("/") ? -1 : undefined);
  if (inner.some((p) => p === "")) {
    issues.push({ message: `pattern "${source}" has an empty segment.`, fix: `remove the repeated "/" so that every segment has a name or a variable.` });
  }
  const segments: PatternSegment[] = [];
  const variables: string[] = [];
  for (const part of inner) {
    if (part === "") continue;
    const variable = VARIABLE.exec(part)?.[1];
    if (variable !== undefined) {
      if (variables.includes(variable)) {
        issues.push({ message: `pattern "${source}" uses {${variable}} twice.`, fix: `keep one {${variable}}; each field fills one segment.` });
      }
      variables.push(variable);
      segments.push({ variable });
    } else if (part.includes("{") || part.includes("}")) {
      issues.push(braceIssue(source, part));
    } else if (!LITERAL.test(part)) {
      issues.push({
        message: `pattern "${source}" has literal segment "${part}" with characters other than letters, digits, ".", "_" and "-".`,
        fix: `spell the segment with letters, digits, ".", "_" and "-" only.`,
      });
    } else {
      segments.push({ literal: part });
    }
  }
  if (issues.length > 0) return fail(...issues);
  return { ok: true, pattern: { source, segments, variables } };
}

function braceIssue(source: string, part: string): PatternIssue {
  if (/^\{[^{}]*\}$/.test(part)) {
    return {
      message: `pattern "${source}" has variable ${part}, which is not a lower_snake_case field name.`,
      fix: `name a field such as {room_id}; the field name must start with a lower-case letter and use only a-z, 0-9 and "_".`,
    };
  }
  return {
    message: `pattern "${source}" has unbalanced or misplaced braces in segment "${part}".`,
    fix: `write a variable as a whole segment in single braces, ${EXAMPLE}; literal segments contain no braces.`,
  };
}

function fail(...issues: PatternIssue[]): PatternResult {
  return { ok: false, issues };
}
