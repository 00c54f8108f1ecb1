/**
 * A Protocast session over the hand-written WebSocket client: upgrade, Hello, Welcome, then
 * whatever envelopes (or bytes) a test wants to send, with every server envelope decoded.
 */
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Envelope, Frame, Welcome } from "../../runtime/wire/envelope.js";
import { binaryFrame, openRaw, upgradeRequest, type RawSocket, type UpgradeSpec } from "./raw-ws.js";

export interface RawSession {
  readonly raw: RawSocket;
  readonly welcome: Welcome;
  /** Server envelopes received after Welcome, in order. */
  readonly received: Envelope[];
  /** Called for each server envelope after Welcome (after it is added to `received`). */
  onEnvelope: (env: Envelope) => void;
  sendFrame(frame: Frame, seq?: number): void;
  /** Sends bytes as one binary WebSocket message, whatever they are. */
  sendBytes(bytes: Uint8Array): void;
}

export const hello = (): Uint8Array => encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "hello", value: { version: 1, client: "hostile-test" } } });

/** The Hello frame, masked once: the fuzz opens tens of thousands of sessions. */
let helloFrame: Buffer | undefined;

/** Opens a connection and completes the Protocast handshake; rejects if either step fails. */
export async function openSession(port: number, spec: UpgradeSpec = {}, timeoutMs = 5_000): Promise<RawSession> {
  const raw = await openRaw(port, upgradeRequest(spec), timeoutMs);
  if (raw.status !== 101) throw new Error(`upgrade refused: ${raw.head.split("\r\n")[0] ?? ""}`);
  const received: Envelope[] = [];
  const welcome = await new Promise<Welcome>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no Welcome in time")), timeoutMs);
    raw.onMessage = (m) => {
      const env = decodeEnvelope(m.payload);
      if (env.frame.case !== "welcome") return;
      clearTimeout(timer);
      resolve(env.frame.value);
    };
    void raw.ended.then((e) => reject(new Error(`closed before Welcome (${String(e.code)} ${e.reason})`)));
    raw.send((helloFrame ??= binaryFrame(hello())));
  });
  const session: RawSession = {
    raw,
    welcome,
    received,
    onEnvelope: () => undefined,
    sendFrame: (frame, seq = 0) => raw.send(binaryFrame(encodeEnvelope({ seq, ackSeq: 0, frame }))),
    sendBytes: (bytes) => raw.send(binaryFrame(bytes)),
  };
  raw.onMessage = (m) => {
    if (m.opcode !== 0x2) return;
    const env = decodeEnvelope(m.payload);
    received.push(env);
    session.onEnvelope(env);
  };
  return session;
}
