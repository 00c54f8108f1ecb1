import { open, readFile, rename } from "node:fs/promises";
import { withOutbox } from "../../client/outbox.js";
import type { OutboxRecord, OutboxStore } from "../../client/outbox-store.js";

/** What the file holds: a marker, so that a file of something else is never taken for records. */
interface OutboxFile {
  readonly protocast: "outbox";
  readonly version: 1;
  /**
   * Records as JSON, the request in base64 (the metadata, an object of strings, as it is);
   * anything else found here is kept and passed on as is.
   */
  readonly records: unknown[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * An outbox store in one JSON file, for Node clients: the whole file is rewritten on each
 * change (written to "<path>.tmp", flushed to disk, then renamed over the file, so a crash
 * leaves the old file or the new one, never half of one). Changes that arrive while a write
 * is under way are written together by the next one. Meant for the few hundred calls an
 * outbox holds; a larger backlog wants a database behind OutboxStore.
 *
 * A file that is not JSON, or not an outbox file, is moved aside to "<path>.corrupt-<time>"
 * and reported once by list(); the store then starts empty.
 */
export function fileOutbox(path: string): OutboxStore {
  let loaded: Promise<Map<string, unknown>> | undefined;
  let unreadable: Error | undefined;
  let chain: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;

  const load = (): Promise<Map<string, unknown>> =>
    (loaded ??= readRecords(path).then(
      (r) => {
        unreadable = r.problem;
        return r.records;
      },
      (e: unknown) => {
        loaded = undefined; // an I/O error: try again next time
        throw e;
      },
    ));

  const persist = (records: Map<string, unknown>): Promise<void> => {
    // A write that has not started yet will carry this change too.
    if (queued !== undefined) return queued;
    const write = chain.then(async () => {
      queued = undefined;
      const file: OutboxFile = { protocast: "outbox", version: 1, records: Array.from(records.values()) };
      await writeAtomically(path, JSON.stringify(file));
    });
    queued = write;
    chain = write.catch(() => undefined);
    return write;
  };

  return withOutbox({
    async put(record: OutboxRecord) {
      const records = await load();
      records.set(record.key, { ...record, request: Buffer.from(record.request).toString("base64") });
      await persist(records);
    },
    async delete(key: string) {
      const records = await load();
      if (records.delete(key)) await persist(records);
    },
    async list() {
      const records = await load();
      const problem = unreadable;
      unreadable = undefined;
      if (problem !== undefined) throw problem;
      return Array.from(records.values(), fromFile);
    },
    async clear() {
      const records = await load();
      records.clear();
      await persist(records);
    },
  });
}

async function readRecords(path: string): Promise<{ records: Map<string, unknown>; problem: Error | undefined }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { records: new Map(), problem: undefined };
    throw e;
  }
  let file: OutboxFile;
  try {
    const parsed = JSON.parse(text) as Partial<OutboxFile> | null;
    if (parsed?.protocast !== "outbox" || parsed.version !== 1 || !Array.isArray(parsed.records)) throw new Error("not an outbox file of version 1");
    file = parsed as OutboxFile;
  } catch (e) {
    const aside = `${path}.corrupt-${Date.now()}`;
    await rename(path, aside).catch(() => undefined);
    return { records: new Map(), problem: new Error(`${path} could not be read (${(e as Error).message}); moved to ${aside}`) };
  }
  const records = new Map<string, unknown>();
  file.records.forEach((entry, i) => {
    const key = (entry as { key?: unknown } | null)?.key;
    // An entry without a key cannot be deleted by key; it is kept (and reported) as found.
    records.set(typeof key === "string" ? key : `#${i}`, entry);
  });
  return { records, problem: undefined };
}

/** An entry as the outbox reads it: the request back to bytes when it is base64. */
function fromFile(entry: unknown): unknown {
  if (typeof entry !== "object" || entry === null) return entry;
  const request = (entry as { request?: unknown }).request;
  if (typeof request !== "string" || !BASE64.test(request)) return entry;
  return { ...entry, request: new Uint8Array(Buffer.from(request, "base64")) };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w");
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
