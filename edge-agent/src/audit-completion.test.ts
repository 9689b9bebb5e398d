// The window between a call's intent and its completion: whatever the shipper does in between,
// a call whose completion is journaled is shipped once, as "completed" — never as "unknown".
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventFromJson, generateEdgeSigningKey } from "@tollgate/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { AuditRecorder } from "./audit-recorder.js";

// The machine's NATS, isolated by a unique stream and subject prefix.
const NATS_URL = "nats://127.0.0.1:4222";
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A recorder whose shipper reaches NATS only while `nats.up` is true. */
async function setup(maxBytes?: number, natsUp = true) {
  const prefix = `tgcmp${randomUUID().slice(0, 8)}`;
  const stream = `CMP_${prefix}`;
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.audit.>`, `${prefix}.checkpoint.>`] });
  cleanups.push(async () => {
    await jsm.streams.delete(stream);
    await nc.close();
  });
  const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-cmp-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nats = { up: natsUp };
  const recorder = await AuditRecorder.open({
    dir,
    connect: () =>
      nats.up ? connect({ servers: NATS_URL, reconnect: false }) : Promise.reject(new Error("NATS down (test)")),
    edge: "edge-c",
    signingKey: generateEdgeSigningKey(),
    subjectPrefix: () => prefix,
    ...(maxBytes !== undefined ? { maxBytes } : {}),
  });
  cleanups.push(() => recorder.close(0));
  /** Every audit event in the stream, in order. */
  const events = async (): Promise<AuditEvent[]> => {
    const out: AuditEvent[] = [];
    const { last_seq: last } = (await jsm.streams.info(stream)).state;
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m?.subject.includes(".audit.")) out.push(auditEventFromJson(m.string()));
    }
    return out;
  };
  return { recorder, nats, events };
}

function event(padding = 0): AuditEvent {
  return create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: randomUUID(),
    eventName: "PutObject",
    eventSource: "s3.amazonaws.com",
    ...(padding > 0 ? { errorMessage: "x".repeat(padding) } : {}),
    tollgate: { connection: "conn", edge: "edge-c", decision: Decision.ALLOW, signingName: "s3" },
  });
}

function final(intent: AuditEvent): AuditEvent {
  return create(AuditEventSchema, { ...intent, tollgate: { ...intent.tollgate, httpStatus: 200 } });
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("completion window", () => {
  it("a completion journaled after the shipper went past its intent ships as completed, once", async () => {
    const { recorder, events } = await setup();
    const slow = event();
    const call = await recorder.begin(slow);
    // Other calls come and go while this one is in flight; the shipper ships them and idles.
    for (let i = 0; i < 5; i++) {
      const other = event();
      await recorder.complete(await recorder.begin(other), final(other));
    }
    await until(() => recorder.shipper.idle && recorder.shipper.stats.shipped === 5, 10_000, "5 shipped");
    await new Promise((r) => setTimeout(r, 500));
    expect(recorder.shipper.stats.interrupted).toBe(0);
    expect(await recorder.complete(call, final(slow))).toBe(true);
    await until(() => recorder.shipper.idle && recorder.shipper.stats.shipped === 6, 10_000, "6 shipped");
    const shipped = (await events()).filter((e) => e.eventId === slow.eventId);
    expect(shipped.map((e) => e.tollgate?.outcome)).toEqual(["completed"]);
    expect(shipped[0]?.tollgate?.httpStatus).toBe(200);
  });

  it("keeps the completion of a call in flight while an outage fills the journal, and recovers after it", async () => {
    const { recorder, nats, events } = await setup(1024 * 1024 + 4096, false);
    await until(() => recorder.shipper.stats.failures > 0, 10_000, "the shipper to notice the outage");
    // A call is forwarded; meanwhile refusals fill the journal to its bound.
    const inFlight = event();
    const call = await recorder.begin(inFlight);
    for (const padding of [60_000, 4_000, 200, 0]) {
      for (let i = 0; i < 1000; i++) if (!(await recorder.record(event(padding)))) break;
    }
    expect(await recorder.record(event())).toBe(false);
    expect(recorder.healthy).toBe(false);
    // The call reached AWS: its outcome (larger than the room left) must be recorded although
    // the journal is "full".
    const done = final(inFlight);
    done.errorMessage = "y".repeat(1000);
    expect(await recorder.complete(call, done)).toBe(true);

    nats.up = true;
    await until(() => recorder.shipper.idle, 20_000, "the backlog to ship");
    const shipped = (await events()).filter((e) => e.eventId === inFlight.eventId);
    expect(shipped.map((e) => e.tollgate?.outcome)).toEqual(["completed"]);
    // Nothing left pending pins the backlog: the edge takes calls again without a restart.
    await until(() => recorder.healthy, 10_000, "the journal to be released");
    expect(recorder.journal.backlogBytes).toBeLessThan(64 * 1024);
  });
});
