import { ProtocastError } from "../errors/protocast-error.js";
import { Code } from "../errors/code.js";

/** A compiled channel name pattern such as "room/{room_id}". */
export interface ChannelPattern {
  readonly source: string;
  format(params: Readonly<Record<string, string>>): string;
  parse(channel: string): Record<string, string> | undefined;
}

type Segment = { readonly literal: string } | { readonly param: string };

/** Longest accepted value of one pattern variable, in UTF-16 code units. */
export const MAX_CHANNEL_PARAM_LENGTH = 256;

/**
 * Compiles a pattern. `params` maps TypeScript parameter names to the proto field names used
 * in the pattern. Values may not contain "/" so that a name parses back to one set of params.
 */
export function compilePattern(source: string, params: Readonly<Record<string, string>>): ChannelPattern {
  const byField = new Map<string, string>();
  for (const [local, field] of Object.entries(params)) byField.set(field, local);
  const segments: Segment[] = source.split("/").map((part) => {
    const m = /^\{([a-z][a-z0-9_]*)\}$/.exec(part);
    if (m === null) return { literal: part };
    const local = byField.get(m[1] ?? "");
    if (local === undefined) {
      throw new ProtocastError(Code.Internal, `channel pattern "${source}" names unknown variable ${part}`);
    }
    return { param: local };
  });
  return {
    source,
    format(values) {
      return segments
        .map((s) => {
          if ("literal" in s) return s.literal;
          const v = values[s.param];
          if (typeof v !== "string" || v === "" || v.includes("/") || v.length > MAX_CHANNEL_PARAM_LENGTH) {
            throw new ProtocastError(
              Code.InvalidArgument,
              `channel "${source}": parameter ${s.param} must be a non-empty string of at most ${MAX_CHANNEL_PARAM_LENGTH} characters without "/"`,
            );
          }
          return v;
        })
        .join("/");
    },
    parse(channel) {
      const parts = channel.split("/");
      if (parts.length !== segments.length) return undefined;
      const out: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const s = segments[i]!;
        const p = parts[i]!;
        if ("literal" in s) {
          if (s.literal !== p) return undefined;
        } else {
          if (p === "" || p.length > MAX_CHANNEL_PARAM_LENGTH) return undefined;
          out[s.param] = p;
        }
      }
      return out;
    },
  };
}
