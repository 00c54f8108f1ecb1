/** A small typed event emitter; listeners that throw do not stop the others. */
export class Emitter<E> {
  private readonly listeners = new Map<keyof E, Set<(data: never) => void>>();

  on<K extends keyof E>(event: K, listener: (data: E[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener as (data: never) => void);
    return () => set.delete(listener as (data: never) => void);
  }

  emit<K extends keyof E>(event: K, data: E[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const l of Array.from(set)) {
      try {
        (l as (d: E[K]) => void)(data);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
