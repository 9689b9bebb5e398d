// Issue #4: OpenTelemetry end to end. The edge's SERVER span for an AWS call, the PRODUCER span of
// its audit event's JetStream publish (traceparent in the message headers) and the control plane's
// CONSUMER span of its ingest form one trace, exported over real OTLP/HTTP; the event carries the
// trace id; a caller's traceparent is continued.
import { randomBytes } from "node:crypto";
import { CreateBucketCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { AuditEvent } from "@tollgate/proto";
import { auditEventFromJson, createControlPlaneClient, type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATS_URL } from "./support/dev-instance.js";
import { Stack, s3Client, waitForCount } from "./support/fault-stack.js";
import { OtlpReceiver, type ReceivedSpan, SpanKindNumber } from "./support/otlp-receiver.js";

let moto: MotoServer;
let receiver: OtlpReceiver;
const stack = new Stack(() => ({ natsUrl: NATS_URL, moto }));

beforeAll(async () => {
  [moto, receiver] = await Promise.all([startMotoServer({ verifySignatures: true }), OtlpReceiver.start()]);
  const otel = {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.tracesUrl,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "100",
  };
  stack.controlPlaneEnv = otel;
  stack.edgeEnv = otel;
  await stack.start();
}, 120_000);

afterAll(async () => {
  await stack.stop();
  await receiver?.close();
  await moto?.close();
});

/** Adds a `traceparent` header to every request the client sends (before signing). */
function withTraceparent(s3: S3Client, traceparent: string): S3Client {
  s3.middlewareStack.add(
    (next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers.traceparent = traceparent;
      return next(args);
    },
    { step: "build", name: "traceparent" },
  );
  return s3;
}

/** The edge SERVER span, edge PRODUCER span and control-plane CONSUMER span of one event. */
async function spansOf(
  event: AuditEvent,
): Promise<{ server: ReceivedSpan; producer: ReceivedSpan; consumer: ReceivedSpan }> {
  const traceId = event.tollgate?.traceId ?? "";
  const server = await receiver.waitFor(
    (ss) => ss.find((s) => s.traceId === traceId && s.kind === SpanKindNumber.SERVER),
    `SERVER ${traceId}`,
  );
  const producer = await receiver.waitFor(
    (ss) => ss.find((s) => s.traceId === traceId && s.kind === SpanKindNumber.PRODUCER),
    `PRODUCER ${traceId}`,
  );
  const consumer = await receiver.waitFor(
    (ss) => ss.find((s) => s.traceId === traceId && s.kind === SpanKindNumber.CONSUMER),
    `CONSUMER ${traceId}`,
  );
  return { server, producer, consumer };
}

/** Every audit message of the stream with its headers, read by a durable consumer as a SIEM would. */
async function siemRead(count: number): Promise<Array<{ event: AuditEvent; traceparent: string }>> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    const durable = `SIEM_${randomBytes(4).toString("hex")}`;
    await jsm.consumers.add(stack.names.stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${stack.names.subjectPrefix}.audit.v1.>`,
    });
    const consumer = await jetstream(nc).consumers.get(stack.names.stream, durable);
    const out: Array<{ event: AuditEvent; traceparent: string }> = [];
    while (out.length < count) {
      const batch = await consumer.fetch({ max_messages: count - out.length, expires: 2000 });
      for await (const m of batch) {
        out.push({ event: auditEventFromJson(m.string()), traceparent: m.headers?.get("traceparent") ?? "" });
        m.ack();
      }
    }
    await jsm.consumers.delete(stack.names.stream, durable);
    return out;
  } finally {
    await nc.close();
  }
}

describe("OpenTelemetry traces edge → NATS → control plane", () => {
  it("one trace per call: SERVER (edge) → PRODUCER (edge publish) → CONSUMER (control-plane ingest), id in the event", async () => {
    const principal = `trace-${stack.names.id}`;
    const cred = await stack.issue(principal);
    const bucket = `trace-${stack.names.id}`;
    const s3 = s3Client(stack.edgeUrl, cred);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "plain", Body: "one" }));

    // A caller that traces too: its span becomes the parent of the edge's.
    const callerTraceId = randomBytes(16).toString("hex");
    const callerSpanId = randomBytes(8).toString("hex");
    const traced = withTraceparent(s3Client(stack.edgeUrl, cred), `00-${callerTraceId}-${callerSpanId}-01`);
    const tracedPut = await traced.send(new PutObjectCommand({ Bucket: bucket, Key: "traced", Body: "two" }));

    await waitForCount(() => stack.query(principal), 2, 30_000);
    const events = await stack.query(principal);
    const plain = events.find((e) => e.requestId === put.$metadata.requestId) as AuditEvent;
    const continued = events.find((e) => e.requestId === tracedPut.$metadata.requestId) as AuditEvent;
    expect(plain).toBeDefined();
    expect(continued).toBeDefined();

    for (const event of [plain, continued]) {
      const traceId = event.tollgate?.traceId ?? "";
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      const { server, producer, consumer } = await spansOf(event);
      // The edge's span for the call, named and described by semantic conventions.
      expect(server.service).toBe("tollgate-edge");
      expect(server.name).toBe("aws s3.PutObject");
      expect(server.spanId).toBe(event.tollgate?.spanId);
      expect(server.attributes).toMatchObject({
        "rpc.system": "aws-api",
        "rpc.service": "s3",
        "rpc.method": "PutObject",
        "cloud.region": "us-east-1",
        "aws.request_id": event.requestId,
        "http.response.status_code": 200,
        "tollgate.decision": "allow",
        "tollgate.principal": principal,
        "tollgate.connection": "default",
        "tollgate.event_id": event.eventId,
      });
      // server → producer → consumer, across the journal, NATS and another process.
      expect(producer.service).toBe("tollgate-edge");
      expect(producer.parentSpanId).toBe(server.spanId);
      expect(producer.attributes).toMatchObject({ "messaging.system": "nats", "messaging.message.id": event.eventId });
      expect(String(producer.attributes["messaging.destination.name"])).toMatch(
        new RegExp(`^${stack.names.subjectPrefix}\\.audit\\.v1\\.`),
      );
      expect(consumer.service).toBe("tollgate-control-plane");
      expect(consumer.parentSpanId).toBe(producer.spanId);
      expect(consumer.attributes).toMatchObject({
        "messaging.system": "nats",
        "messaging.destination.name": producer.attributes["messaging.destination.name"],
        "messaging.message.id": event.eventId,
      });
    }

    // Without a caller traceparent the edge span is a root; with one it is continued.
    const plainServer = (await spansOf(plain)).server;
    expect(plainServer.parentSpanId).toBe("");
    expect(continued.tollgate?.traceId).toBe(callerTraceId);
    expect((await spansOf(continued)).server.parentSpanId).toBe(callerSpanId);

    // SIEM consumers see the trace context on the JetStream message: the producer span.
    const siem = await siemRead(3);
    for (const event of [plain, continued]) {
      const msg = siem.find((m) => m.event.eventId === event.eventId);
      const { producer } = await spansOf(event);
      expect(msg?.traceparent).toBe(`00-${event.tollgate?.traceId}-${producer.spanId}-01`);
    }
    expect(receiver.rejected).toEqual([]);
  });

  it("one SERVER span per control-plane RPC, with the Connect error code when it fails", async () => {
    const bad = createControlPlaneClient({ baseUrl: stack.cp.url, token: "not-a-token" });
    await expect(bad.audit.listAlerts({})).rejects.toThrow();
    await stack.query(`nobody-${stack.names.id}`);
    const ok = await receiver.waitFor(
      (ss) =>
        ss.find(
          (s) =>
            s.service === "tollgate-control-plane" &&
            s.name === "tollgate.audit.v1.AuditService/QueryEvents" &&
            s.attributes["rpc.connect_rpc.error_code"] === undefined,
        ),
      "QueryEvents",
    );
    expect(ok.kind).toBe(SpanKindNumber.SERVER);
    expect(ok.attributes).toMatchObject({ "rpc.system": "connect_rpc", "rpc.method": "QueryEvents" });
    const refused = await receiver.waitFor(
      (ss) => ss.find((s) => s.name === "tollgate.audit.v1.AuditService/ListAlerts"),
      "ListAlerts",
    );
    expect(refused.attributes["rpc.connect_rpc.error_code"]).toBe("unauthenticated");
  });
});
