import type { Principal } from "./context.js";

/**
 * Whether a principal holds a scope. "" (nothing declared) is always granted; a principal
 * holding "*" holds every scope; "chat" also grants "chat:read" and any other "chat:..." scope.
 */
export function hasScope(principal: Principal, scope: string): boolean {
  if (scope === "") return true;
  for (const s of principal.scopes) {
    if (s === "*" || s === scope || scope.startsWith(`${s}:`)) return true;
  }
  return false;
}
