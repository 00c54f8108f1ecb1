import { withOutbox } from "./outbox.js";
import type { OutboxRecord, OutboxStore } from "./outbox-store.js";

/**
 * An outbox store in this process's memory. It survives a new connect() in the same process
 * (a client "restart" in tests, or a reconnect of a long-lived app), not the process itself.
 */
export function memoryOutbox(): OutboxStore {
  const records = new Map<string, OutboxRecord>();
  return withOutbox({
    put(record) {
      // A copy of its own, as IndexedDB or a file would keep.
      const copy: OutboxRecord = { ...record, request: record.request.slice() };
      records.set(record.key, record.metadata === undefined ? copy : { ...copy, metadata: { ...record.metadata } });
      return Promise.resolve();
    },
    delete(key) {
      records.delete(key);
      return Promise.resolve();
    },
    list() {
      return Promise.resolve(Array.from(records.values()));
    },
    clear() {
      records.clear();
      return Promise.resolve();
    },
  });
}
