import { Code } from "./code.js";
import { ProtocastError } from "./protocast-error.js";

/**
 * Checks of the options a factory was given, so that a mistake fails at once with a message
 * that names the option and the fix, instead of as a TypeError deep inside later.
 */

function bad(where: string, message: string): ProtocastError {
  return new ProtocastError(Code.InvalidArgument, `${where}: ${message}`, { reason: "bad_option" });
}

/** Rejects keys the factory does not know, suggesting the nearest known one. */
export function rejectUnknownOptions(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    throw bad(where, `unknown option "${key}"${near === undefined ? "" : `; did you mean "${near}"?`}`);
  }
}

function isThenable(value: unknown): boolean {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/**
 * An object option must have these methods. A Promise in its place is the most common mistake
 * (an async factory called without await), so it gets a message of its own.
 */
export function expectMethods(where: string, name: string, value: unknown, methods: readonly string[]): void {
  if (value === undefined) return;
  if (isThenable(value)) throw bad(where, `option ${name} is a Promise; await the factory that made it (for example \`${name}: await createNatsBroker(…)\`)`);
  if (typeof value !== "object" || value === null) throw bad(where, `option ${name} must be an object, got ${describe(value)}`);
  const missing = methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== "function");
  if (missing.length > 0) throw bad(where, `option ${name} has no ${missing.join(", ")} method${missing.length > 1 ? "s" : ""}; is it the right kind of object?`);
}

export function expectFunction(where: string, name: string, value: unknown): void {
  if (value === undefined || typeof value === "function") return;
  throw bad(where, `option ${name} must be a function, got ${describe(value)}`);
}

export function expectOneOf<T extends string>(where: string, name: string, value: unknown, allowed: readonly T[]): void {
  if (value === undefined) return;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return;
  throw bad(where, `option ${name} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${describe(value)}`);
}

/** A list option whose entries come from a fixed set; empty is refused when `nonEmpty`. */
export function expectListOf<T extends string>(where: string, name: string, value: unknown, allowed: readonly T[], nonEmpty = true): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || (nonEmpty && value.length === 0)) throw bad(where, `option ${name} must be a ${nonEmpty ? "non-empty " : ""}list of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${describe(value)}`);
  for (const v of value) expectOneOf(where, `${name}[]`, v, allowed);
}

export function expectString(where: string, name: string, value: unknown, test?: (s: string) => string | undefined): void {
  if (value === undefined) return;
  if (typeof value !== "string") throw bad(where, `option ${name} must be a string, got ${describe(value)}`);
  const problem = test?.(value);
  if (problem !== undefined) throw bad(where, `option ${name} ${problem}, got ${JSON.stringify(value)}`);
}

export function expectBoolean(where: string, name: string, value: unknown): void {
  if (value === undefined || typeof value === "boolean") return;
  throw bad(where, `option ${name} must be true or false, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/** The known key closest to `key` by edit distance, when it is close enough to be a typo. */
function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The option names of a factory, listed once: the compiler refuses the list when it misses a
 * key of the options type, so a new option cannot be forgotten by the unknown-key check.
 * `optionKeys<FooOptions>()("a", "b")`.
 */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    ...keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { readonly missing: Exclude<keyof T, K[number]> })
  ): K => keys;
}
