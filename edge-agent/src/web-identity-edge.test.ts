import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Decision } from "@tollgate/proto";
import { auditEventFromJson, createControlPlaneClient, generateEdgeSigningKey } from "@tollgate/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { AuditRecorder } from "./audit-recorder.js";
import { createEdgeServer } from "./edge-server.js";
import { controlPlaneWebIdentityExchanger } from "./web-identity-sts.js";

// The machine's NATS, isolated by a unique stream and subject prefix.
const NATS_URL = "nats://127.0.0.1:4222";
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("AssumeRoleWithWebIdentity at an edge whose control plane is unreachable", () => {
  it("answers STS's 503 ServiceUnavailable and still records exactly one audit event", async () => {
    const prefix = `tgwi${randomUUID().slice(0, 8)}`;
    const stream = `WI_${prefix}`;
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.audit.>`, `${prefix}.checkpoint.>`] });
    cleanups.push(async () => {
      await jsm.streams.delete(stream);
      await nc.close();
    });
    const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-wi-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const recorder = await AuditRecorder.open({
      dir,
      connect: () => connect({ servers: NATS_URL, reconnect: false }),
      edge: "edge-wi",
      signingKey: generateEdgeSigningKey(),
      subjectPrefix: () => prefix,
    });
    cleanups.push(() => recorder.close(0));
    // A real gRPC client to a port nothing listens on.
    const client = createControlPlaneClient({ baseUrl: "http://127.0.0.1:9", token: "edge-token", timeoutMs: 2000 });
    const server = createEdgeServer({
      config: () => ({
        revision: 1n,
        connections: new Map(),
        credentialKeys: new Map(),
        auditStream: stream,
        auditSubjectPrefix: prefix,
      }),
      recorder,
      edgeName: "edge-wi",
      webIdentity: controlPlaneWebIdentityExchanger(client, "edge-wi"),
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;

    const payload = Buffer.from(JSON.stringify({ sub: "claimed-agent", iss: "https://idp" })).toString("base64url");
    const jwt = `eyJhbGciOiJSUzI1NiJ9.${payload}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk`;
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        Action: "AssumeRoleWithWebIdentity",
        Version: "2011-06-15",
        RoleArn: "arn:aws:iam::000000000000:role/tollgate/default",
        RoleSessionName: "s1",
        WebIdentityToken: jwt,
      }).toString(),
    });
    const body = await res.text();
    expect(res.status).toBe(503);
    expect(body).toContain("<Code>ServiceUnavailable</Code>");
    const requestId = res.headers.get("x-amzn-requestid");

    const consumer = await jetstream(nc).consumers.get(stream);
    const events: string[] = [];
    const deadline = Date.now() + 15_000;
    while (events.length === 0 && Date.now() < deadline) {
      for await (const m of await consumer.fetch({ max_messages: 10, expires: 1000 })) {
        if (m.subject.startsWith(`${prefix}.audit.`)) events.push(m.string());
      }
    }
    // One more round: a second event (there must be none) would have shipped by now.
    for await (const m of await consumer.fetch({ max_messages: 10, expires: 1500 })) {
      if (m.subject.startsWith(`${prefix}.audit.`)) events.push(m.string());
    }
    expect(events).toHaveLength(1);
    const e = auditEventFromJson(events[0] as string);
    expect(e.eventId).toBe(requestId);
    expect(e.eventName).toBe("AssumeRoleWithWebIdentity");
    expect(e.errorCode).toBe("ServiceUnavailable");
    expect(e.tollgate?.decision).toBe(Decision.DENY);
    expect(e.tollgate?.reason).toBe("control-plane-unavailable");
    expect(e.tollgate?.connection).toBe("default");
    expect(e.userIdentity?.principalId).toBe("claimed-agent");
    expect(events[0]).not.toContain(jwt);
  }, 30_000);
});
