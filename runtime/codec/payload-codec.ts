import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { payloadLimits, type MessageCodec, type PayloadLimits } from "./message-codec.js";
import { PayloadReader } from "./payload-reader.js";
import { PayloadWriter } from "./payload-writer.js";

/** The four functions the generator prints for one message type. */
export interface PayloadCodecParts {
  readonly typeName: string;
  /** Measures the body and records the lengths the writer will need (payload-size.ts). */
  size(message: object, lengths: number[]): number;
  write(writer: PayloadWriter, message: object): void;
  /** A message with every field at its default, as protobuf-es's create() makes it. */
  create(): object;
  /** Reads fields up to `end` into `message`, merging as protobuf-es does. */
  read(reader: PayloadReader, end: number, message: object): void;
}

// create(desc, undefined) is an empty message; a handler that returns nothing replies with one.
const EMPTY = Object.freeze({});

/** Joins generated parts into a MessageCodec. Called by generated code. */
export function payloadCodec<D extends DescMessage>(parts: PayloadCodecParts): MessageCodec<D> {
  const { typeName, size, write, create, read } = parts;
  return {
    encode(message: MessageInitShape<D>): Uint8Array {
      const m = (message ?? EMPTY) as object;
      const lengths: number[] = [];
      const n = size(m, lengths);
      const writer = new PayloadWriter(n, lengths);
      write(writer, m);
      if (writer.pos !== n) {
        // Only a value that changed between the passes (a getter) can get here.
        throw new ProtocastError(Code.Internal, `encoding ${typeName} wrote ${String(writer.pos)} bytes, measured ${String(n)}`);
      }
      return writer.buf;
    },
    decode(bytes: Uint8Array, limits?: Partial<PayloadLimits>): MessageShape<D> {
      const reader = new PayloadReader(bytes, typeName, payloadLimits(limits));
      const message = create();
      read(reader, bytes.length, message);
      return message as MessageShape<D>;
    },
    size(message: MessageInitShape<D>): number {
      return size((message ?? EMPTY) as object, []);
    },
  };
}
