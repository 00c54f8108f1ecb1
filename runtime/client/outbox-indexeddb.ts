import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { withOutbox } from "./outbox.js";
import type { OutboxRecord, OutboxStore } from "./outbox-store.js";

/** Options of indexedDbOutbox(). */
export interface IndexedDbOutboxOptions {
  /** The IndexedDB factory. Default the global `indexedDB`. */
  readonly indexedDB?: IDBFactory;
}

/** Object store inside the database; records are keyed by their idempotency key. */
const RECORDS = "records";

/**
 * An outbox store in the browser's IndexedDB, in a database named "protocast-outbox:<name>".
 * Records survive a reload, a crashed tab and a closed browser. Writes use the browser's
 * default durability, which in Chromium is "relaxed": a crash of the whole operating system may
 * lose the last writes. One tab per name: two live tabs on the same name would each resend the
 * other's unanswered calls (the server still runs each once, but both tabs report its outcome).
 */
export function indexedDbOutbox(name: string, options: IndexedDbOutboxOptions = {}): OutboxStore {
  if (typeof name !== "string" || name === "") throw new ProtocastError(Code.InvalidArgument, "indexedDbOutbox: the name must be a non-empty string", { reason: "bad_option" });
  let db: Promise<IDBDatabase> | undefined;
  const open = (): Promise<IDBDatabase> =>
    (db ??= openDatabase(`protocast-outbox:${name}`, options.indexedDB).catch((e: unknown) => {
      db = undefined; // try again on the next operation
      throw e;
    }));

  const run = async <T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T> | undefined): Promise<T> => {
    const tx = (await open()).transaction(RECORDS, mode);
    const request = work(tx.objectStore(RECORDS));
    // Resolve on the transaction, not the request: only then is the change committed.
    return new Promise<T>((resolve, reject) => {
      tx.oncomplete = () => resolve(request?.result as T);
      tx.onerror = () => reject(storeError(`IndexedDB ${mode} failed`, tx.error));
      tx.onabort = () => reject(storeError(`IndexedDB ${mode} was aborted`, tx.error));
    });
  };

  return withOutbox({
    async put(record: OutboxRecord) {
      await run("readwrite", (s) => s.put(record));
    },
    async delete(key: string) {
      await run("readwrite", (s) => s.delete(key));
    },
    list() {
      return run("readonly", (s) => s.getAll() as IDBRequest<unknown[]>);
    },
    async clear() {
      await run("readwrite", (s) => s.clear());
    },
  });
}

function openDatabase(dbName: string, factory: IDBFactory | undefined): Promise<IDBDatabase> {
  const idb = factory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (idb === undefined) return Promise.reject(new ProtocastError(Code.Unavailable, "no IndexedDB here; use memoryOutbox() or a store of your own", { reason: "outbox_unreadable" }));
  return new Promise((resolve, reject) => {
    const req = idb.open(dbName, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(RECORDS)) req.result.createObjectStore(RECORDS, { keyPath: "key" });
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab upgrading the database: step aside rather than block it.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    req.onerror = () => reject(storeError(`IndexedDB database ${dbName} could not be opened`, req.error));
    req.onblocked = () => reject(storeError(`IndexedDB database ${dbName} is blocked by another tab`, null));
  });
}

function storeError(message: string, cause: DOMException | null): ProtocastError {
  return new ProtocastError(Code.Unavailable, cause === null ? message : `${message}: ${cause.message}`, { cause });
}
