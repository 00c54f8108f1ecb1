/**
 * The test-vector format of PROTOCOL.md, section "Test vectors": one fenced block per vector,
 *
 *     ```vector
 *     name: call-with-idempotency-key
 *     json: {"seq":"1","call":{...}}
 *     hex: 08 01 2a ...
 *     ```
 *
 * where json is the protobuf JSON form (as toJsonString prints it) and hex the binary encoding.
 */
import { toBinary, toJsonString } from "@bufbuild/protobuf";
import { EnvelopeSchema, type Envelope as ReferenceEnvelope } from "../../generated/protocast/v1/envelope_pb.js";

export interface Vector {
  readonly name: string;
  readonly json: string;
  readonly bytes: Uint8Array;
}

const BLOCK = /^```vector[ \t]*\r?\n([\s\S]*?)^```[ \t]*$/gm;

/** Every vector block of a markdown text; throws on a malformed block, naming it. */
export function parseVectors(markdown: string): Vector[] {
  const vectors: Vector[] = [];
  for (const match of markdown.matchAll(BLOCK)) {
    const fields = new Map<string, string>();
    for (const line of (match[1] ?? "").split(/\r?\n/)) {
      const m = /^(name|json|hex):\s?(.*)$/.exec(line.trim());
      if (m !== null) fields.set(m[1]!, m[2]!.trim());
      else if (line.trim() !== "") throw new Error(`unexpected line in vector block: ${line}`);
    }
    const name = fields.get("name");
    const json = fields.get("json");
    const hex = fields.get("hex");
    if (name === undefined || json === undefined || hex === undefined) {
      throw new Error(`vector block needs name, json and hex: ${match[0]}`);
    }
    if (!/^([0-9a-f]{2}( |$))*$/.test(hex)) throw new Error(`vector ${name}: hex must be lowercase byte pairs separated by spaces`);
    vectors.push({ name, json, bytes: fromHex(hex) });
  }
  return vectors;
}

export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.split(/\s+/).filter((pair) => pair !== ""), (pair) => parseInt(pair, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** A vector block for a protobuf-es envelope, both forms computed by protobuf-es. */
export function formatVector(name: string, message: ReferenceEnvelope): string {
  const json = toJsonString(EnvelopeSchema, message);
  const hex = toHex(toBinary(EnvelopeSchema, message));
  return ["```vector", `name: ${name}`, `json: ${json}`, `hex: ${hex}`, "```"].join("\n");
}
