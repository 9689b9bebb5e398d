import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type AuditEvent, AuditEventSchema, Decision, type IntegrityAlert } from "@tollgate/proto";
import { auditEventToJson, auditSubject, chainEvent, silentLogger } from "@tollgate/sdk";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AuditIndex, type IndexableEvent } from "./audit-index.js";
import { AuditIngest } from "./audit-ingest.js";
import { AuditIntegrity } from "./audit-integrity.js";
import { ensureAuditStream } from "./audit-stream.js";
import { EdgeKeyRegistry } from "./edge-key-registry.js";

const NATS_URL = "nats://127.0.0.1:4222";
const REDIS_URL = "redis://127.0.0.1:6379";
const id = randomBytes(4).toString("hex");
const redisPrefix = `tollgate-test:${id}:`;
const dir = mkdtempSync(join(tmpdir(), "tollgate-ingest-"));

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let redis: Redis;
const streams: string[] = [];
const running: { ingest: AuditIngest; index: AuditIndex }[] = [];

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  redis = new Redis(REDIS_URL);
});

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.ingest.stop();
    r.index.close();
  }
});

afterAll(async () => {
  for (const s of streams) await jsm.streams.delete(s).catch(() => false);
  await nc?.close();
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

/** An index whose insert fails once for the given event ids (index trouble, as a full disk would give). */
class FlakyIndex extends AuditIndex {
  constructor(
    path: string,
    private readonly failOnce: Set<string>,
  ) {
    super(path);
  }

  override insert(event: IndexableEvent): boolean {
    if (this.failOnce.delete(event.eventId)) throw new Error("injected index failure");
    return super.insert(event);
  }
}

async function newStream(): Promise<{ stream: string; subjectPrefix: string }> {
  const n = randomBytes(4).toString("hex");
  const stream = `TGINGEST_${n}`;
  const subjectPrefix = `tgingest_${n}`;
  streams.push(stream);
  await ensureAuditStream(jsm, { stream, subjectPrefix, maxAgeMs: 0, duplicateWindowMs: 60_000 }, silentLogger);
  return { stream, subjectPrefix };
}

function chain(edge: string, n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  let prev = "";
  for (let i = 1; i <= n; i++) {
    const ev = create(AuditEventSchema, {
      eventId: randomUUID(),
      eventTime: new Date(Date.now() - 60_000 + i).toISOString(),
      eventSource: "s3.amazonaws.com",
      eventName: "GetObject",
      userIdentity: { principalId: `p-${edge}` },
      resources: [{ arn: `arn:aws:s3:::b/${i}` }],
      tollgate: { connection: "default", edge, decision: Decision.ALLOW, signingName: "s3" },
    });
    prev = chainEvent(ev, BigInt(i), prev);
    out.push(ev);
  }
  return out;
}

/** Publishes all at once (one burst), in order. */
async function publish(subjectPrefix: string, bodies: string[]): Promise<void> {
  const subject = auditSubject(subjectPrefix, {
    connection: "default",
    principal: "p",
    service: "s3",
    operation: "GetObject",
  });
  await Promise.all(bodies.map((b) => js.publish(subject, b)));
}

async function start(
  index: AuditIndex,
  s: { stream: string; subjectPrefix: string },
  alerts: IntegrityAlert[],
): Promise<AuditIngest> {
  const integrity = new AuditIntegrity(index, new EdgeKeyRegistry(redis, redisPrefix), silentLogger, {
    silenceAlertMs: 0,
    onAlert: (a) => alerts.push(a),
  });
  const ingest = new AuditIngest(
    js,
    jsm,
    index,
    { ...s, consumerName: "audit-index", replay: true, integrity, batchWindowMs: 200 },
    silentLogger,
  );
  running.push({ ingest, index });
  await ingest.start();
  return ingest;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("AuditIngest batches", () => {
  it("indexes and acks a batch, retrying alone the event that failed to index", async () => {
    const s = await newStream();
    const events = chain("edge-flaky", 6);
    const failing = events[2] as AuditEvent;
    const index = new FlakyIndex(join(dir, `${s.stream}.sqlite`), new Set([failing.eventId]));
    await publish(s.subjectPrefix, events.map(auditEventToJson));
    const alerts: IntegrityAlert[] = [];
    const ingest = await start(index, s, alerts);

    // The other five are indexed and acked; the failed one waits for its redelivery (5 s).
    await until("the rest of the batch", () => index.count() === 5);
    expect(index.eventById(failing.eventId)).toBeUndefined();
    await until("acks", async () => (await jsm.consumers.info(s.stream, "audit-index")).num_ack_pending === 1);
    await until("the redelivered event", () => index.count() === 6, 15_000);
    expect(index.eventById(failing.eventId)?.chainHash).toBe(failing.tollgate?.hash);
    await until("its ack", async () => (await jsm.consumers.info(s.stream, "audit-index")).num_ack_pending === 0);
    expect(ingest.indexed).toBe(6);
    expect(alerts).toEqual([]);
    expect(index.chainHeads()).toEqual([
      expect.objectContaining({ edge: "edge-flaky", sequence: 6n, eventId: events[5]?.eventId }),
    ]);
  }, 30_000);

  it("terminates a malformed message and indexes the rest of its batch", async () => {
    const s = await newStream();
    const events = chain("edge-malformed", 4);
    const bodies = events.map(auditEventToJson);
    bodies.splice(2, 0, "{not json", JSON.stringify({ eventID: "no-time", eventTime: "yesterday" }));
    const index = new AuditIndex(join(dir, `${s.stream}.sqlite`));
    await publish(s.subjectPrefix, bodies);
    const alerts: IntegrityAlert[] = [];
    const ingest = await start(index, s, alerts);
    await until("the valid events", () => index.count() === 4);
    await until("acks and terms", async () => {
      const info = await jsm.consumers.info(s.stream, "audit-index");
      return info.num_ack_pending === 0 && info.ack_floor.stream_seq === 6;
    });
    expect(ingest.indexed).toBe(4);
    expect(alerts).toEqual([]);
    expect(index.resumeStreamSeq()).toBe(6);
  });
});
