const NONE: readonly never[] = [];

/**
 * Sessions by principal id. Most principals have one session (anonymous ones always do), so
 * one session is held as it is and a Set is made only for a second one: an idle connection
 * costs one map entry here, not a Set of its own.
 */
export class SessionsByPrincipal<S extends object> {
  private readonly map = new Map<string, S | Set<S>>();

  add(principal: string, session: S): void {
    const cur = this.map.get(principal);
    if (cur === undefined) this.map.set(principal, session);
    else if (cur instanceof Set) cur.add(session);
    else if (cur !== session) this.map.set(principal, new Set([cur, session]));
  }

  delete(principal: string, session: S): void {
    const cur = this.map.get(principal);
    if (cur === undefined) return;
    if (!(cur instanceof Set)) {
      if (cur === session) this.map.delete(principal);
      return;
    }
    cur.delete(session);
    if (cur.size === 1) this.map.set(principal, cur.values().next().value as S);
    else if (cur.size === 0) this.map.delete(principal);
  }

  /** Sessions of a principal. */
  count(principal: string): number {
    const cur = this.map.get(principal);
    return cur === undefined ? 0 : cur instanceof Set ? cur.size : 1;
  }

  /** The sessions of a principal, in the order they came. */
  of(principal: string): Iterable<S> {
    const cur = this.map.get(principal);
    return cur === undefined ? NONE : cur instanceof Set ? cur : [cur];
  }

  /** Every principal with a session, with its sessions. */
  *entries(): IterableIterator<[string, Iterable<S>]> {
    for (const [p, cur] of this.map) yield [p, cur instanceof Set ? cur : [cur]];
  }
}
