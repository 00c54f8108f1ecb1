/**
 * protobuf-es as the reference implementation of envelope.proto: conversions between its
 * messages (bigint 64-bit fields, $typeName, $unknown) and the runtime's plain shapes.
 * Both directions walk the schema, so a field added to the proto is covered without edits here.
 */
import {
  create,
  fromBinary,
  fromJsonString,
  ScalarType,
  toBinary,
  type DescField,
  type DescMessage,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";
import type { Envelope } from "../../runtime/wire/envelope.js";

type Plain = Record<string, unknown>;
type Convert = (v: unknown) => unknown;

const LONG = new Set([ScalarType.UINT64, ScalarType.INT64, ScalarType.FIXED64, ScalarType.SFIXED64, ScalarType.SINT64]);

function walk(desc: DescMessage, msg: Plain, long: Convert): Plain {
  const out: Plain = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const o = msg[member.localName] as { case?: string; value?: unknown } | undefined;
      const field = member.fields.find((f) => f.localName === o?.case);
      out[member.localName] =
        field === undefined ? { case: undefined } : { case: field.localName, value: convert(field, o?.value, long) };
    } else {
      out[member.localName] = convert(member, msg[member.localName], long);
    }
  }
  return out;
}

function convert(field: DescField, v: unknown, long: Convert): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return LONG.has(field.scalar) ? long(v) : v;
    case "enum":
      return v;
    case "message":
      return v === undefined ? undefined : walk(field.message, v as Plain, long);
    case "list":
      if (field.listKind !== "message") throw new Error(`unsupported list ${field.toString()}`);
      return (v as Plain[]).map((item) => walk(field.message, item, long));
    case "map":
      throw new Error(`unsupported map ${field.toString()}`);
  }
}

/** protobuf-es init shape of a plain envelope: 64-bit numbers become bigints. */
export function toReferenceInit(env: Envelope): MessageInitShape<typeof EnvelopeSchema> {
  return walk(EnvelopeSchema, env as unknown as Plain, (v) => BigInt(v as number)) as MessageInitShape<
    typeof EnvelopeSchema
  >;
}

/** A protobuf-es message as a plain envelope: bigints become numbers, $typeName and $unknown go. */
export function normalise(msg: unknown): Envelope {
  return walk(EnvelopeSchema, msg as Plain, (v) => Number(v as bigint)) as unknown as Envelope;
}

/** Bytes protobuf-es writes for the same content. */
export function referenceEncode(env: Envelope): Uint8Array {
  return toBinary(EnvelopeSchema, create(EnvelopeSchema, toReferenceInit(env)));
}

/** What protobuf-es reads from the bytes, normalised. Throws whatever protobuf-es throws. */
export function referenceDecode(bytes: Uint8Array): Envelope {
  return normalise(fromBinary(EnvelopeSchema, bytes));
}

/** A protobuf JSON envelope, normalised. */
export function referenceFromJson(json: string): Envelope {
  return normalise(fromJsonString(EnvelopeSchema, json));
}
