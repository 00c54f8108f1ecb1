import { nanos } from "@nats-io/transport-node";
import { DiscardPolicy, JetStreamApiError, StorageType, type JetStreamManager } from "@nats-io/jetstream";

/**
 * Creates the stream behind a JetStream KV bucket (`KV_<bucket>` on `$KV.<bucket>.>`, one message
 * per key), or brings an existing one's max_age to `ttlMs`. Shared by the NATS session and
 * idempotency stores.
 */
export async function ensureKvBucket(jsm: JetStreamManager, bucket: string, ttlMs: number): Promise<void> {
  const stream = `KV_${bucket}`;
  const limits = { max_age: nanos(ttlMs), duplicate_window: nanos(Math.min(ttlMs, 120_000)) };
  try {
    await jsm.streams.add({
      name: stream,
      subjects: [`$KV.${bucket}.>`],
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.New,
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: true,
      storage: StorageType.File,
      num_replicas: 1,
      ...limits,
    });
  } catch (e) {
    // 10058: the stream exists with other settings. 10065 (subjects overlap) is what a node
    // hears when another node creates the same bucket at the same moment.
    if (!(e instanceof JetStreamApiError && (e.code === 10058 || e.code === 10065))) throw e;
    const info = await jsm.streams.info(stream).catch(() => {
      throw e;
    });
    if (info.config.max_age !== limits.max_age) await jsm.streams.update(stream, limits);
  }
}
