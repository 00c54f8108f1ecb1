// PROTOCOL.md 3.5: neither side sends an envelope the other cannot take. The client fails an
// over-large request locally (request_too_large) and keeps its connection; the server answers
// an over-large reply with an Error (reply_too_large) in its place.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, type Connection } from "protocast/node";
import { startConformanceServer, type RunningConformanceServer } from "../../examples/conformance/server.js";
import { ConformanceService } from "../../generated/protocast/conformance/v1/conformance_protocast.js";

describe("envelopes over max_envelope_bytes", () => {
  let server: RunningConformanceServer;
  let conn: Connection;
  beforeAll(async () => {
    server = await startConformanceServer({ port: 0 });
    conn = connect(server.url, { token: "oversize" });
  });
  afterAll(async () => {
    await conn.close();
    await server.close();
  });

  it("the client fails an over-large publish with request_too_large and stays connected", async () => {
    const client = createClient(ConformanceService, conn);
    const err = await client.publishReliable({ name: "big" }, { n: 1, data: new Uint8Array(20_000) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocastError);
    expect([(err as ProtocastError).code, (err as ProtocastError).reason]).toEqual([Code.ResourceExhausted, "request_too_large"]);
    await client.publishReliable({ name: "big" }, { n: 2, data: new Uint8Array(100) });
    expect(conn.state).toBe("open");
  });

  it("the server answers an over-large reply with reply_too_large", async () => {
    const client = createClient(ConformanceService, conn);
    const err = await client.echo({ size: 20_000 }).catch((e: unknown) => e);
    expect([(err as ProtocastError).code, (err as ProtocastError).reason]).toEqual([Code.ResourceExhausted, "reply_too_large"]);
    expect((await client.echo({ size: 10 })).data.length).toBe(10);
  });
});
