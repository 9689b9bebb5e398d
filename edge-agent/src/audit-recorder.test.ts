import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventFromJson, generateEdgeSigningKey } from "@tollgate/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { AuditRecorder, AuditUnavailableError } from "./audit-recorder.js";

// The machine's NATS, isolated by a unique stream and subject prefix.
const NATS_URL = "nats://127.0.0.1:4222";
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: { maxBytes?: number; failOpen?: string[]; deferredSyncMs?: number } = {}) {
  const prefix = `tgrec${randomUUID().slice(0, 8)}`;
  const stream = `REC_${prefix}`;
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.audit.>`, `${prefix}.checkpoint.>`] });
  cleanups.push(async () => {
    await jsm.streams.delete(stream);
    await nc.close();
  });
  const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-rec-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const recorder = await AuditRecorder.open({
    dir,
    connect: () => connect({ servers: NATS_URL, reconnect: false }),
    edge: "edge-r",
    signingKey: generateEdgeSigningKey(),
    subjectPrefix: () => prefix,
    checkpointIntervalMs: 200,
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    ...(options.failOpen !== undefined ? { failOpenConnections: options.failOpen } : {}),
    ...(options.deferredSyncMs !== undefined ? { deferredSyncMs: options.deferredSyncMs } : {}),
  });
  cleanups.push(() => recorder.close(0));
  const messages = async () => {
    const consumer = await jetstream(nc).consumers.get(stream);
    const total = (await jsm.streams.info(stream)).state.messages;
    const out: Array<{ subject: string; data: string }> = [];
    while (out.length < total) {
      for await (const m of await consumer.fetch({ max_messages: 100, expires: 1000 })) {
        out.push({ subject: m.subject, data: m.string() });
      }
    }
    return out;
  };
  return { recorder, prefix, messages };
}

function event(connection = "conn"): AuditEvent {
  return create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: randomUUID(),
    eventName: "GetObject",
    eventSource: "s3.amazonaws.com",
    tollgate: { connection, edge: "edge-r", decision: Decision.ALLOW, signingName: "s3" },
  });
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("AuditRecorder", () => {
  it("close() commits and ships a final event still waiting for its deferred commit", async () => {
    const { recorder, messages } = await setup({ deferredSyncMs: 60_000 });
    const e = event();
    const call = await recorder.begin(e);
    let completed = false;
    void recorder.complete(call, { ...e, eventName: "GetObject" }).then(() => {
      completed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    // Nothing else commits: the final event is still queued.
    expect(completed).toBe(false);
    await recorder.close(2000);
    expect(completed).toBe(true);
    const events = (await messages())
      .filter((m) => m.subject.includes(".audit."))
      .map((m) => auditEventFromJson(m.data));
    expect(events.map((x) => [x.eventId, x.tollgate?.outcome])).toEqual([[e.eventId, "completed"]]);
  });

  it("journals intent before forwarding and ships one completed event per call, plus refusals", async () => {
    const { recorder, prefix, messages } = await setup();
    const e = event();
    const call = await recorder.begin(e);
    expect(call.journaled).toBe(true);
    const final = create(AuditEventSchema, { ...e, tollgate: { ...e.tollgate, httpStatus: 200 } });
    expect(await recorder.complete(call, final)).toBe(true);
    const denied = event();
    expect(await recorder.record(denied)).toBe(true);
    await until(() => recorder.shipper.idle && recorder.shipper.stats.checkpoints > 0, 5000);
    const msgs = await messages();
    const events = msgs
      .filter((m) => m.subject.startsWith(`${prefix}.audit.v1.conn.`))
      .map((m) => auditEventFromJson(m.data));
    expect(events.map((x) => x.eventId)).toEqual([e.eventId, denied.eventId]);
    expect(events[0]?.tollgate?.httpStatus).toBe(200);
    expect(events.map((x) => x.tollgate?.outcome)).toEqual(["completed", "completed"]);
    expect(events.map((x) => x.tollgate?.sequence)).toEqual([1n, 2n]);
    expect(msgs.some((m) => m.subject === `${prefix}.checkpoint.v1.edge-r`)).toBe(true);
    expect(recorder.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(recorder.publicKeyPem).toContain("BEGIN PUBLIC KEY");
  });

  it("fails closed with AuditUnavailableError when the journal is full, and open only for listed connections", async () => {
    const { recorder } = await setup({ maxBytes: 1024 * 1024 + 4096, failOpen: ["lenient"] });
    // Stop shipping so the backlog cannot drain.
    await recorder.shipper.close();
    let refused: unknown;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const e = event();
      e.errorMessage = "x".repeat(60_000);
      await recorder.begin(e).catch((err: unknown) => {
        refused = err;
      });
    }
    expect(refused).toBeInstanceOf(AuditUnavailableError);
    expect(recorder.healthy).toBe(false);
    const strict = event();
    strict.errorMessage = "x".repeat(60_000);
    await expect(recorder.begin(strict)).rejects.toBeInstanceOf(AuditUnavailableError);
    const lenientEvent = event("lenient");
    lenientEvent.errorMessage = "x".repeat(60_000);
    const lenient = await recorder.begin(lenientEvent);
    expect(lenient.journaled).toBe(false);
    expect(recorder.failOpenFor("lenient")).toBe(true);
    expect(recorder.failOpenFor("conn")).toBe(false);
  });
});
