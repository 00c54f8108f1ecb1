import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { ProtocastError } from "../errors/protocast-error.js";
import { payloadLimits, type MessageCodec, type PayloadLimits } from "./message-codec.js";
import { badPayload } from "./payload-errors.js";

/**
 * A codec that uses protobuf-es reflection: for hand-written definitions, and for messages the
 * generator does not specialise (proto2, editions, wrapper and Struct fields; the generated
 * file names them). Decoding errors become the same typed error the generated codecs throw;
 * maxRepeated is not enforced on this path.
 */
export function reflectionCodec<D extends DescMessage>(desc: D): MessageCodec<D> {
  const encode = (message: MessageInitShape<D>): Uint8Array => toBinary(desc, create(desc, message));
  return {
    encode,
    decode(bytes: Uint8Array, limits?: Partial<PayloadLimits>): MessageShape<D> {
      try {
        return fromBinary(desc, bytes, { recursionLimit: payloadLimits(limits).maxDepth });
      } catch (e) {
        if (e instanceof ProtocastError) throw e;
        throw badPayload(desc.typeName, e instanceof Error ? e.message : String(e), e);
      }
    },
    size: (message) => encode(message).byteLength,
  };
}
