/**
 * Splices unknown fields into a valid envelope encoding, at the top level and inside the frame,
 * to check that a decoder skips fields a newer peer may send. Uses protobuf-es's wire
 * primitives, so the splicing does not depend on the codec under test.
 */
import { fc } from "@fast-check/vitest";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";

export type UnknownValue =
  | { wireType: WireType.Varint; value: bigint }
  | { wireType: WireType.Bit64; value: bigint }
  | { wireType: WireType.LengthDelimited; value: Uint8Array }
  | { wireType: WireType.Bit32; value: number };

export interface Insertion {
  /** Where the frame's own fields get it; "top" puts it among the Envelope's fields. */
  level: "top" | "frame";
  /** Index among the existing fields, taken modulo their count + 1. */
  at: number;
  /** Added to the message's highest field number, so the field is never a defined one. */
  fieldOffset: number;
  unknown: UnknownValue;
}

const MAX_FIELD = 2 ** 29 - 1;

const unknownValue: fc.Arbitrary<UnknownValue> = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((value) => ({ wireType: WireType.Varint as const, value })),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((value) => ({ wireType: WireType.Bit64 as const, value })),
  fc.uint8Array({ maxLength: 40 }).map((value) => ({ wireType: WireType.LengthDelimited as const, value })),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((value) => ({ wireType: WireType.Bit32 as const, value })),
);

export const insertions: fc.Arbitrary<Insertion[]> = fc.array(
  fc.record({
    level: fc.constantFrom("top" as const, "frame" as const),
    at: fc.nat(),
    fieldOffset: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: MAX_FIELD })),
    unknown: unknownValue,
  }),
  { minLength: 1, maxLength: 6 },
);

interface WireRecord {
  no: number;
  wireType: WireType;
  /** Everything after the tag, including a length prefix. */
  data: Uint8Array;
}

function split(bytes: Uint8Array): WireRecord[] {
  const reader = new BinaryReader(bytes);
  const records: WireRecord[] = [];
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    records.push({ no, wireType, data: reader.skip(wireType, no) });
  }
  return records;
}

function join(records: readonly WireRecord[]): Uint8Array {
  const writer = new BinaryWriter();
  for (const r of records) writer.tag(r.no, r.wireType).raw(r.data);
  return writer.finish();
}

function unknownRecord(no: number, u: UnknownValue): WireRecord {
  const writer = new BinaryWriter();
  switch (u.wireType) {
    case WireType.Varint: writer.uint64(u.value); break;
    case WireType.Bit64: writer.fixed64(u.value); break;
    case WireType.LengthDelimited: writer.bytes(u.value); break;
    case WireType.Bit32: writer.fixed32(u.value); break;
  }
  return { no, wireType: u.wireType, data: writer.finish() };
}

function insert(records: WireRecord[], ins: Insertion, maxDefined: number): void {
  const no = Math.min(maxDefined + ins.fieldOffset, MAX_FIELD);
  records.splice(ins.at % (records.length + 1), 0, unknownRecord(no, ins.unknown));
}

const envelopeMax = Math.max(...EnvelopeSchema.fields.map((f) => f.number));

function frameMax(no: number): number {
  const field = EnvelopeSchema.fields.find((f) => f.number === no);
  if (field?.message === undefined) throw new Error(`field ${String(no)} is not a frame`);
  return Math.max(...field.message.fields.map((f) => f.number));
}

/** The encoding with the insertions spliced in. */
export function withUnknownFields(bytes: Uint8Array, list: readonly Insertion[]): Uint8Array {
  const top = split(bytes);
  const frame = top.find((r) => r.no > 2);
  if (frame === undefined) throw new Error("encoding has no frame");
  const inner = split(new BinaryReader(frame.data).bytes());
  for (const ins of list) {
    if (ins.level === "top") insert(top, ins, envelopeMax);
    else insert(inner, ins, frameMax(frame.no));
  }
  frame.data = new BinaryWriter().bytes(join(inner)).finish();
  return join(top);
}
