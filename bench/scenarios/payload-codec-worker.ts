/**
 * User-payload encode+decode throughput, in one process, no network: the Echo call of the bench
 * service with the payload the rpc scenario sends (plan.payloadBytes, 100 bytes). One operation
 * is what both ends of one echo do to user messages: encode the request, decode it, encode the
 * response, decode it.
 *   protocast: the codecs the generator printed into bench_protocast.ts, taken from the service
 *              definition as the runtime takes them (BenchService.calls.echo.inputCodec and
 *              outputCodec), starting from the init shapes a caller and a handler pass;
 *   ws slot:   protobuf-es reflection, toBinary + fromBinary of EchoRequest and EchoResponse,
 *              starting from messages made by create() (same bytes);
 *   socketio slot: JSON.stringify + JSON.parse of the same fields, payload as a string.
 */
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema, EchoResponseSchema } from "../../generated/acme/bench/v1/bench_pb.js";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import type { MessageCodec } from "../../runtime/index.js";
import { nowNs, type CodecArgs, type CodecReport, type Peer } from "../lib/messages.js";
import { onCommand, report, workerArgs } from "../lib/proc.js";
import { payloadBytes, payloadText } from "../lib/payload.js";

interface PayloadCodecArgs extends CodecArgs {
  readonly payloadBytes: number;
}

const args = workerArgs<PayloadCodecArgs>();
onCommand(
  () => undefined,
  () => Promise.resolve(),
);

const echo = BenchService.calls["echo"]!;
const inputCodec = echo.inputCodec as MessageCodec<typeof EchoRequestSchema>;
const outputCodec = echo.outputCodec as MessageCodec<typeof EchoResponseSchema>;
const payload = payloadBytes(args.payloadBytes);
const request = { payload };
const response = { payload };
const reflectedRequest = create(EchoRequestSchema, { payload });
const reflectedResponse = create(EchoResponseSchema, { payload });
const jsonRequest = { payload: payloadText(args.payloadBytes) };

/** One echo's worth of encoding and decoding; returns something derived from the result. */
const ops: Record<Peer, () => number> = {
  protocast: () => {
    const a = inputCodec.encode(request);
    const req = inputCodec.decode(a);
    const b = outputCodec.encode(response);
    const res = outputCodec.decode(b);
    return a.length + b.length + req.payload.length + res.payload.length;
  },
  ws: () => {
    const a = toBinary(EchoRequestSchema, reflectedRequest);
    const req = fromBinary(EchoRequestSchema, a);
    const b = toBinary(EchoResponseSchema, reflectedResponse);
    const res = fromBinary(EchoResponseSchema, b);
    return a.length + b.length + req.payload.length + res.payload.length;
  },
  socketio: () => {
    const a = JSON.stringify(jsonRequest);
    const req = JSON.parse(a) as { payload: string };
    const b = JSON.stringify({ payload: req.payload });
    const res = JSON.parse(b) as { payload: string };
    return a.length + b.length + req.payload.length + res.payload.length;
  },
};

// The generated codecs must agree with protobuf-es on these messages, both ways, or the
// comparison means nothing.
const ours = [inputCodec.encode(request), outputCodec.encode(response)];
const theirs = [toBinary(EchoRequestSchema, reflectedRequest), toBinary(EchoResponseSchema, reflectedResponse)];
if (ours.some((b, i) => Buffer.compare(b, theirs[i]!) !== 0)) throw new Error("the generated Echo codecs and protobuf-es disagree on the bytes");
if (!equals(EchoRequestSchema, inputCodec.decode(theirs[0]!), reflectedRequest) || !equals(EchoResponseSchema, outputCodec.decode(theirs[1]!), reflectedResponse)) {
  throw new Error("the generated Echo codecs and protobuf-es disagree on the decoded messages");
}

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
  bytes: {
    protocast: ours[0]!.length + ours[1]!.length,
    ws: theirs[0]!.length + theirs[1]!.length,
    socketio: Buffer.byteLength(JSON.stringify(jsonRequest)) * 2,
  },
  opsPerSecond,
};
report(result);
