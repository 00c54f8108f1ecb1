import { create, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";

// fast-check arbitraries for any message, read off its descriptor: init shapes as an
// application writes them (partial, plain objects), the messages create() makes of them, and
// unknown fields as a decoder keeps them.

const INT32 = { min: -0x8000_0000, max: 0x7fff_ffff };
const UINT32 = { min: 0, max: 0xffff_ffff };
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };

/** Text with ASCII, any code point, and lone surrogates (which UTF-8 turns into U+FFFD). */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 6 }).map((codes) => String.fromCharCode(...codes)),
  fc.string({ minLength: 60, maxLength: 300 }),
);

/** Small values, zero and the extremes turn up more often than uniform draws would give. */
function scalar(type: ScalarType, longAsString: boolean): fc.Arbitrary<unknown> {
  const long = (range: { min: bigint; max: bigint }) => {
    const arb = fc.oneof(fc.bigInt(range), fc.bigInt({ min: -200n > range.min ? -200n : range.min, max: 200n }), fc.constantFrom(range.min, range.max, 0n));
    return longAsString ? arb.map(String) : arb;
  };
  const int = (range: { min: number; max: number }) => fc.oneof(fc.integer(range), fc.integer({ min: Math.max(range.min, -200), max: 200 }), fc.constantFrom(range.min, range.max, 0));
  switch (type) {
    case ScalarType.DOUBLE:
      return fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, 1.5));
    case ScalarType.FLOAT:
      return fc.oneof(fc.float(), fc.constantFrom(0, -0, NaN, -Infinity));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return int(INT32);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return int(UINT32);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return long(INT64);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return long(UINT64);
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return text;
    case ScalarType.BYTES:
      return fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ minLength: 130, maxLength: 400 }));
  }
}

/** A map key as the object key protobuf-es stores it under. */
function mapKey(type: ScalarType): fc.Arbitrary<string> {
  if (type === ScalarType.STRING) return fc.oneof(text, fc.constant("__proto__"));
  if (type === ScalarType.BOOL) return fc.constantFrom("true", "false");
  return scalar(type, false).map(String);
}

function value(field: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar, field.longAsString);
    case "enum":
      return enumValue(field);
    case "message": {
      // protobuf-es holds a singular wrapper field as its plain value.
      const inner = field.message.fields[0];
      if (field.oneof === undefined && isWrapperDesc(field.message) && inner?.fieldKind === "scalar") return scalar(inner.scalar, false);
      return initOf(field.message, depth + 1);
    }
    case "list": {
      const item = field.listKind === "message" ? initOf(field.message, depth + 1) : field.listKind === "enum" ? enumValue(field) : scalar(field.scalar, field.longAsString);
      return fc.array(item, { maxLength: depth > 1 ? 1 : 4 });
    }
    case "map": {
      const v = field.mapKind === "message" ? initOf(field.message, depth + 1) : field.mapKind === "enum" ? enumValue(field) : scalar(field.scalar, false);
      return fc.array(fc.tuple(mapKey(field.mapKey), v), { maxLength: depth > 1 ? 1 : 3 }).map((entries) => Object.fromEntries(entries));
    }
  }
}

/** Declared values mostly; open enums also carry unknown numbers. */
function enumValue(field: DescField & { enum: { values: readonly { number: number }[] } }): fc.Arbitrary<number> {
  return fc.oneof({ arbitrary: fc.constantFrom(...field.enum.values.map((v) => v.number)), weight: 3 }, { arbitrary: fc.integer(INT32), weight: 1 });
}

// Deeper than this, message fields stay unset, so that recursive types end.
const MAX_DEPTH = 3;

/** A partial init shape of `desc`: each field absent or set, oneofs to any case or none. */
export function initOf(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const cases = member.fields
        .filter((f) => f.fieldKind !== "message" || depth < MAX_DEPTH)
        .map((f) => value(f, depth).map((v) => ({ case: f.localName, value: v })));
      parts[member.localName] = fc.oneof(fc.constant({ case: undefined }), ...cases);
      continue;
    }
    const isMessage = member.fieldKind === "message" || (member.fieldKind === "list" && member.listKind === "message") || (member.fieldKind === "map" && member.mapKind === "message");
    if (isMessage && depth >= MAX_DEPTH) continue;
    parts[member.localName] = value(member, depth);
  }
  return fc.record(parts, { requiredKeys: [] });
}

/** A message with unknown fields of every wire type under field numbers `desc` does not declare. */
export function messageOf<M extends Message>(desc: DescMessage): fc.Arbitrary<M> {
  return fc.tuple(initOf(desc), fc.array(unknownField(desc), { maxLength: 3 })).map(([init, unknown]) => {
    const m = create(desc, init) as unknown as M & { $unknown?: unknown };
    if (unknown.length > 0) m.$unknown = unknown;
    return m;
  });
}

function unknownField(desc: DescMessage): fc.Arbitrary<{ no: number; wireType: number; data: Uint8Array }> {
  const taken = new Set(desc.fields.map((f) => f.number));
  const no = fc.integer({ min: 1, max: 3000 }).filter((n) => !taken.has(n) && (n < 19000 || n > 19999));
  const data = fc.oneof(
    fc.bigInt(UINT64).map((v) => ({ wireType: 0, data: new BinaryWriter().uint64(v).finish() })),
    fc.uint8Array({ minLength: 8, maxLength: 8 }).map((data) => ({ wireType: 1, data })),
    fc.uint8Array({ maxLength: 20 }).map((bytes) => ({ wireType: 2, data: new BinaryWriter().bytes(bytes).finish() })),
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((data) => ({ wireType: 5, data })),
  );
  return fc.tuple(no, data).map(([n, d]) => ({ no: n, ...d }));
}
