import type { IncomingMessage } from "node:http";
import type { AdmissionRequest } from "../../server/admission.js";

/** A Node request as admission and refusal reports read it. */
export function admissionRequest(req: IncomingMessage): AdmissionRequest {
  return { headers: req.headers, url: req.url ?? "/", remoteAddress: req.socket.remoteAddress ?? "" };
}
