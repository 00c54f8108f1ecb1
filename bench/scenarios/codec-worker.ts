/**
 * Envelope encode+decode throughput, in one process, no network. Each codec starts from its
 * own in-memory form of the same ~176-byte Call envelope (100-byte payload) and does one
 * encode and one decode per operation:
 *   protocast: encodeEnvelope + decodeEnvelope (runtime/wire);
 *   ws slot:   protobuf-es reflection, toBinary + fromBinary of EnvelopeSchema (same bytes);
 *   socketio slot: JSON.stringify + JSON.parse of the same fields, payload as a string.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../runtime/wire/index.js";
import { nowNs, type CodecArgs, type CodecReport, type Peer } from "../lib/messages.js";
import { onCommand, report, workerArgs } from "../lib/proc.js";
import { payloadBytes, payloadText } from "../lib/payload.js";

const args = workerArgs<CodecArgs>();
onCommand(
  () => undefined,
  () => Promise.resolve(),
);

const fields = {
  id: 4711,
  method: "acme.chat.v1.ChatService/SendMessage",
  timeoutMs: 5000,
  idempotencyKey: "k-5e6b1d4c3a9e7f2d",
};
const plain: Envelope = { seq: 1234, ackSeq: 1201, frame: { case: "call", value: { ...fields, payload: payloadBytes(100) } } };
const reflected = create(EnvelopeSchema, { seq: 1234n, ackSeq: 1201n, frame: { case: "call", value: { ...fields, payload: payloadBytes(100) } } });
const json = { seq: 1234, ackSeq: 1201, frame: { case: "call", value: { ...fields, payload: payloadText(100) } } };

/** One encode+decode; returns something derived from the result so that nothing is optimised away. */
const ops: Record<Peer, () => number> = {
  protocast: () => {
    const bytes = encodeEnvelope(plain);
    return decodeEnvelope(bytes).seq + bytes.length;
  },
  ws: () => {
    const bytes = toBinary(EnvelopeSchema, reflected);
    return Number(fromBinary(EnvelopeSchema, bytes).seq) + bytes.length;
  },
  socketio: () => {
    const text = JSON.stringify(json);
    return (JSON.parse(text) as { seq: number }).seq + text.length;
  },
};

const ours = encodeEnvelope(plain);
const theirs = toBinary(EnvelopeSchema, reflected);
if (Buffer.compare(ours, theirs) !== 0) throw new Error("the runtime codec and protobuf-es disagree on the bench envelope");

let sink = 0;
function measure(op: () => number, minMs: number): number {
  let n = 0;
  const t0 = nowNs();
  const until = t0 + minMs * 1e6;
  let t = t0;
  while (t < until) {
    for (let i = 0; i < 1000; i++) sink += op();
    n += 1000;
    t = nowNs();
  }
  return n / ((t - t0) / 1e9);
}

const opsPerSecond = { protocast: 0, ws: 0, socketio: 0 };
for (const peer of args.order) measure(ops[peer], Math.max(50, args.minMs / 4)); // warm-up
for (const peer of args.order) opsPerSecond[peer] = measure(ops[peer], args.minMs);
if (sink === 42) console.log("");
const result: CodecReport = {
  type: "result",
  bytes: { protocast: ours.length, ws: theirs.length, socketio: Buffer.byteLength(JSON.stringify(json)) },
  opsPerSecond,
};
report(result);
