/**
 * The credential of the scenarios that hold authenticated connections (idle-18k): each
 * connection sends `Authorization: Bearer bench-user-<n>` on its upgrade request, and each
 * peer's server checks it the way that peer checks a credential, keeping the user id with the
 * connection. Not a security check: a stand-in for a token lookup, the same for every peer.
 */
const PREFIX = "bench-user-";

export function benchToken(n: number): string {
  return `${PREFIX}${n}`;
}

/** The user a credential names, or undefined when it is not one of benchToken's. */
export function benchUser(token: string | undefined): string | undefined {
  if (token === undefined || !token.startsWith(PREFIX) || !/^\d+$/.test(token.slice(PREFIX.length))) return undefined;
  return token.slice(PREFIX.length);
}

/** The same from an Authorization header. */
export function benchUserOfHeader(header: string | undefined): string | undefined {
  return header?.startsWith("Bearer ") === true ? benchUser(header.slice(7)) : undefined;
}
