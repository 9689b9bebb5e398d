import { randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { SpanKind, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventFromJson, generateEdgeSigningKey } from "@tollgate/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { AuditJournal, JournalRecordType } from "./audit-journal.js";
import { AuditShipper, encodeJournalEvent } from "./audit-shipper.js";
import { encodeAuditEvent, encodeFinalPayload } from "./audit-wire.js";
import { endCallSpan, startCallSpan } from "./call-span.js";
import { callSpanContext, eventTraceIds, eventTraceIdsFromJson } from "./publish-span.js";

// The machine's NATS, with a stream and subject prefix of this test's own.
const NATS_URL = "nats://127.0.0.1:4222";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tracing(): { provider: BasicTracerProvider; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  cleanups.push(() => provider.shutdown());
  return { provider, exporter };
}

function event(traceId: string, spanId: string): AuditEvent {
  return create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: randomUUID(),
    eventTime: new Date().toISOString(),
    eventSource: "s3.amazonaws.com",
    eventName: "PutObject",
    awsRegion: "us-east-1",
    requestId: "REQ1",
    userIdentity: { type: "TollgatePrincipal", principalId: "alice" },
    tollgate: {
      connection: "conn",
      edge: "edge-a",
      decision: Decision.ALLOW,
      reason: "allowed",
      signingName: "s3",
      httpStatus: 200,
      outcome: "completed",
      traceId,
      spanId,
    },
  });
}

/** Ships `events` (intent + completion each) with `tracerProvider`; returns each message's traceparent by eventID. */
async function shipAndRead(events: AuditEvent[], tracerProvider?: BasicTracerProvider): Promise<Map<string, string>> {
  const id = randomBytes(4).toString("hex");
  const prefix = `tgtest_span_${id}`;
  const stream = `TGTEST_SPAN_${id.toUpperCase()}`;
  const nc = await connect({ servers: NATS_URL });
  cleanups.push(async () => {
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    await nc.close();
  });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.audit.>`, `${prefix}.checkpoint.>`] });
  const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-span-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const journal = await AuditJournal.open({ dir });
  // Both completion encodings: decoded events (Completion) and the encode-once fast path (Final).
  for (const [i, e] of events.entries()) {
    await journal.append(JournalRecordType.Intent, encodeJournalEvent(prefix, e));
    if (i % 2 === 0) await journal.append(JournalRecordType.Completion, encodeJournalEvent(prefix, e));
    else await journal.append(JournalRecordType.Final, encodeFinalPayload(encodeAuditEvent(prefix, e)));
  }
  const shipper = new AuditShipper({
    journal,
    connect: () => connect({ servers: NATS_URL, reconnect: false }),
    edge: "edge-a",
    signingKey: generateEdgeSigningKey(),
    subjectPrefix: () => prefix,
    ...(tracerProvider !== undefined ? { tracer: tracerProvider.getTracer("test") } : {}),
  });
  await shipper.start();
  const until = Date.now() + 10_000;
  while (shipper.stats.shipped < events.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await shipper.close();
  await journal.close();
  const out = new Map<string, string>();
  const { last_seq: last } = (await jsm.streams.info(stream)).state;
  for (let seq = 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null || !m.subject.includes(".audit.")) continue;
    out.set(auditEventFromJson(m.string()).eventId, m.header?.get("traceparent") ?? "");
  }
  return out;
}

describe("call span (edge SERVER span)", () => {
  it("with tracing off, still gives each call a random W3C trace id, and continues a caller's", () => {
    const noop = trace.getTracer("test"); // no provider registered: the API's no-op tracer
    const a = startCallSpan(noop, {}, Date.now());
    const b = startCallSpan(noop, {}, Date.now());
    expect(a.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.traceId).not.toBe(b.traceId);
    expect(a.spanId).toBe("");
    const caller = startCallSpan(noop, { traceparent: `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01` }, Date.now());
    expect(caller.traceId).toBe("ab".repeat(16));
    // Invalid traceparents (all-zero trace id, bad version) start a new trace.
    const zero = startCallSpan(noop, { traceparent: `00-${"0".repeat(32)}-${"cd".repeat(8)}-01` }, Date.now());
    expect(zero.traceId).not.toBe("0".repeat(32));
    const ff = startCallSpan(noop, { traceparent: `ff-${"ab".repeat(16)}-${"cd".repeat(8)}-01` }, Date.now());
    expect(ff.traceId).not.toBe("ab".repeat(16));
  });

  it("with a tracer provider, records a SERVER span named after the call, child of the caller's span", async () => {
    const { provider, exporter } = tracing();
    const cs = startCallSpan(
      provider.getTracer("test"),
      { traceparent: `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01` },
      Date.now(),
    );
    expect(cs.traceId).toBe("ab".repeat(16));
    expect(cs.spanId).toMatch(/^[0-9a-f]{16}$/);
    endCallSpan(cs, event(cs.traceId, cs.spanId), "PUT");
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe("aws s3.PutObject");
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.parentSpanContext?.spanId).toBe("cd".repeat(8));
    expect(span?.spanContext().spanId).toBe(cs.spanId);
    expect(span?.attributes).toMatchObject({
      "rpc.system": "aws-api",
      "rpc.service": "s3",
      "rpc.method": "PutObject",
      "cloud.region": "us-east-1",
      "aws.request_id": "REQ1",
      "http.request.method": "PUT",
      "http.response.status_code": 200,
      "tollgate.decision": "allow",
      "tollgate.principal": "alice",
      "tollgate.connection": "conn",
    });
  });
});

describe("publish span (shipper PRODUCER span and message headers)", () => {
  it("rebuilds the call's span context from the event: recorded span sampled, else derived from the eventID", () => {
    const recorded = callSpanContext(eventTraceIds(event("ab".repeat(16), "cd".repeat(8))));
    expect(recorded).toMatchObject({ traceId: "ab".repeat(16), spanId: "cd".repeat(8), traceFlags: 1 });
    const e = event("ab".repeat(16), "");
    const derived = callSpanContext(eventTraceIds(e));
    expect(derived?.traceFlags).toBe(0);
    expect(derived?.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(callSpanContext(eventTraceIds(e))?.spanId).toBe(derived?.spanId);
    expect(callSpanContext(eventTraceIds(event("", "")))).toBeUndefined();
  });

  it("reads the trace ids from the event's JSON, not from request parameters named like them", () => {
    const e = event("ab".repeat(16), "cd".repeat(8));
    e.requestParameters = { traceId: "ef".repeat(16), spanId: "01".repeat(8) };
    const json = encodeAuditEvent("p", e).json;
    expect(eventTraceIdsFromJson(e.eventId, json)).toEqual(eventTraceIds(e));
    const untraced = event("", "");
    untraced.requestParameters = { traceId: "ef".repeat(16) };
    expect(eventTraceIdsFromJson(untraced.eventId, encodeAuditEvent("p", untraced).json).traceId).toBe("");
  });

  it("puts the producer span's traceparent on each JetStream message, child of the call's span", async () => {
    const { provider, exporter } = tracing();
    const events = [0, 1].map(() => event(randomBytes(16).toString("hex"), randomBytes(8).toString("hex")));
    const headers = await shipAndRead(events, provider);
    for (const e of events) {
      const producer = exporter
        .getFinishedSpans()
        .find((s) => s.kind === SpanKind.PRODUCER && s.spanContext().traceId === e.tollgate?.traceId);
      expect(producer?.parentSpanContext?.spanId).toBe(e.tollgate?.spanId);
      expect(producer?.attributes).toMatchObject({ "messaging.system": "nats", "messaging.message.id": e.eventId });
      expect(headers.get(e.eventId)).toBe(`00-${e.tollgate?.traceId}-${producer?.spanContext().spanId}-01`);
    }
  });

  it("with tracing off, still propagates the event's trace id (not sampled)", async () => {
    const e = event(randomBytes(16).toString("hex"), "");
    const untraced = event("", "");
    const e2 = event(randomBytes(16).toString("hex"), "");
    const headers = await shipAndRead([e, untraced, e2]);
    for (const x of [e, e2]) {
      expect(headers.get(x.eventId)).toBe(`00-${x.tollgate?.traceId}-${callSpanContext(eventTraceIds(x))?.spanId}-00`);
    }
    expect(headers.get(untraced.eventId)).toBe("");
  });
});
