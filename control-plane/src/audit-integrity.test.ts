import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clone, create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  type AuditEvent,
  AuditEventSchema,
  type Checkpoint,
  CheckpointSchema,
  Decision,
  IntegrityAlertSchema,
} from "@tollgate/proto";
import {
  auditAlertSubject,
  auditCheckpointSubject,
  auditEventToJson,
  auditSubject,
  type ControlPlaneClient,
  chainEvent,
  createControlPlaneClient,
  type EdgeSigningKey,
  generateEdgeSigningKey,
  signCheckpoint,
} from "@tollgate/sdk";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "./control-plane.js";

const NATS_URL = "nats://127.0.0.1:4222";
const REDIS_URL = "redis://127.0.0.1:6379";
const id = randomBytes(4).toString("hex");
const redisPrefix = `tollgate-test:${id}:`;
const stream = `TGINT_${id}`;
const subjectPrefix = `tgint_${id}`;

let home: string;
let cp: ControlPlane;
let admin: ControlPlaneClient;
/** Unauthenticated: Enroll carries its one-time token in the request. */
let anonymous: ControlPlaneClient;
let nc: NatsConnection;
let js: JetStreamClient;
let lastSeq = 0;

function newControlPlane(): ControlPlane {
  return new ControlPlane({
    home,
    natsUrl: NATS_URL,
    redisUrl: REDIS_URL,
    redisPrefix,
    auditStream: stream,
    auditSubjectPrefix: subjectPrefix,
    port: 0,
  });
}

/** A chain of `n` events from `edge`, each chained with chainEvent. */
function chain(edge: string, n: number, from = 1, prev = ""): AuditEvent[] {
  const out: AuditEvent[] = [];
  let prevHash = prev;
  for (let i = from; i < from + n; i++) {
    const ev = create(AuditEventSchema, {
      eventVersion: "1.0",
      eventId: randomUUID(),
      eventTime: new Date(Date.now() - 60_000 + i).toISOString(),
      eventSource: "s3.amazonaws.com",
      eventName: i % 2 === 0 ? "GetObject" : "PutObject",
      awsRegion: "us-east-1",
      userIdentity: { type: "TollgatePrincipal", principalId: `p-${edge}` },
      resources: [{ arn: `arn:aws:s3:::bucket-${edge}/key-${i}`, type: "AWS::S3::Object" }],
      eventType: "AwsApiCall",
      ...(i % 3 === 0 ? { errorCode: "AccessDenied", errorMessage: "no" } : {}),
      tollgate: {
        connection: "default",
        edge,
        decision: i % 3 === 0 ? Decision.DENY : Decision.ALLOW,
        signingName: "s3",
      },
    });
    prevHash = chainEvent(ev, BigInt(i), prevHash);
    out.push(ev);
  }
  return out;
}

async function publishEvent(ev: AuditEvent): Promise<void> {
  const subject = auditSubject(subjectPrefix, {
    connection: ev.tollgate?.connection ?? "",
    principal: ev.userIdentity?.principalId ?? "",
    service: "s3",
    operation: ev.eventName,
  });
  const ack = await js.publish(subject, auditEventToJson(ev), { msgID: `${ev.eventId}-${randomUUID()}` });
  lastSeq = ack.seq;
}

async function publishCheckpoint(c: Checkpoint): Promise<void> {
  const ack = await js.publish(auditCheckpointSubject(subjectPrefix, c.edge), toJsonString(CheckpointSchema, c));
  lastSeq = ack.seq;
}

async function settle(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (cp.auditIndex.integrityStreamSeq() < lastSeq) {
    if (Date.now() > deadline) throw new Error(`ingest did not reach stream seq ${lastSeq}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Alerts for an edge, oldest first, via the gRPC API. */
async function alertsFor(
  edge: string,
): Promise<Array<{ kind: string; sequence: bigint; eventId: string; detail: string }>> {
  const res = await admin.audit.listAlerts({ edge, pageSize: 100 });
  return res.alerts
    .reverse()
    .map((a) => ({ kind: a.kind, sequence: a.sequence, eventId: a.eventId, detail: a.detail }));
}

/** An enrolled edge (enrollment registers its checkpoint key) and a client signing as it. */
async function newEdge(): Promise<{ name: string; key: EdgeSigningKey; client: ControlPlaneClient }> {
  const name = `edge-${randomBytes(3).toString("hex")}`;
  const key = generateEdgeSigningKey();
  const { token } = await admin.edgeAdmin.createEnrollmentToken({ edgeName: name });
  const res = await anonymous.edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem });
  expect(res.keyId).toBe(key.keyId);
  const client = createControlPlaneClient({ baseUrl: cp.url, edgeAuth: { edgeName: name, key } });
  return { name, key, client };
}

function cpAt(key: EdgeSigningKey, edge: string, ev: AuditEvent): Checkpoint {
  return signCheckpoint(key, { edge, sequence: ev.tollgate?.sequence ?? 0n, hash: ev.tollgate?.hash ?? "" });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tollgate-int-"));
  cp = newControlPlane();
  await cp.start();
  admin = createControlPlaneClient({
    baseUrl: cp.url,
    token: (await readFile(join(home, "admin.token"), "utf8")).trim(),
  });
  anonymous = createControlPlaneClient({ baseUrl: cp.url });
  nc = await connect({ servers: NATS_URL });
  js = jetstream(nc);
});

afterAll(async () => {
  await cp?.close();
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  if (nc !== undefined) {
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    await nc.close();
  }
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe("edge key registry", () => {
  it("registers Ed25519 keys, lists them, and refuses other keys and bad names", async () => {
    const { name, key, client: edgeClient } = await newEdge();
    // Same key again: same id, still one record.
    await edgeClient.edge.registerEdgeKey({ edgeName: name, publicKeyPem: key.publicKeyPem });
    const listed = (await admin.edge.listEdges({})).keys.filter((k) => k.edgeName === name);
    expect(listed.map((k) => k.keyId)).toEqual([key.keyId]);
    expect(listed[0]?.publicKeyPem).toBe(key.publicKeyPem);
    const rsa = (await import("node:crypto")).generateKeyPairSync("rsa", { modulusLength: 1024 });
    const bad = edgeClient.edge.registerEdgeKey({
      edgeName: name,
      publicKeyPem: rsa.publicKey.export({ type: "spki", format: "pem" }).toString(),
    });
    await expect(bad).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.InvalidArgument);
    // An enrolled edge registers keys for itself only (another name, valid or not, is refused).
    const other = (await newEdge()).name;
    for (const edgeName of [other, "a b"]) {
      const foreign = edgeClient.edge.registerEdgeKey({ edgeName, publicKeyPem: key.publicKeyPem });
      await expect(foreign).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.PermissionDenied);
    }
    expect((await admin.edge.listEdges({})).keys.filter((k) => k.edgeName === other).map((k) => k.keyId)).not.toContain(
      key.keyId,
    );
    // Names are validated (the break-glass token may call RegisterEdgeKey for any name).
    const badName = admin.edge.registerEdgeKey({ edgeName: "a b", publicKeyPem: key.publicKeyPem });
    await expect(badName).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.InvalidArgument);
  });
});

describe("chain verification on ingest", () => {
  it("accepts an intact chain with checkpoints, including an idle one, without alerts", async () => {
    const { name, key } = await newEdge();
    await publishCheckpoint(signCheckpoint(key, { edge: name, sequence: 0n, hash: "" }));
    const events = chain(name, 6);
    for (const ev of events.slice(0, 3)) await publishEvent(ev);
    await publishCheckpoint(cpAt(key, name, events[2] as AuditEvent));
    for (const ev of events.slice(3)) await publishEvent(ev);
    await publishCheckpoint(cpAt(key, name, events[5] as AuditEvent));
    await settle();
    expect(await alertsFor(name)).toEqual([]);
    expect(cp.auditIndex.count({ principal: `p-${name}` })).toBe(6);
  });

  it("names an altered event (bad-hash) and raises nothing else", async () => {
    const { name, key } = await newEdge();
    const events = chain(name, 5);
    const altered = clone(AuditEventSchema, events[2] as AuditEvent);
    altered.eventName = "DeleteObject";
    for (const ev of [events[0], events[1], altered, events[3], events[4]]) await publishEvent(ev as AuditEvent);
    await publishCheckpoint(cpAt(key, name, events[4] as AuditEvent));
    await settle();
    expect(await alertsFor(name)).toEqual([
      expect.objectContaining({ kind: "bad-hash", sequence: 3n, eventId: events[2]?.eventId }),
    ]);
  });

  it("names a forged event whose hash does not match", async () => {
    const { name, key } = await newEdge();
    const events = chain(name, 4);
    const forged = clone(AuditEventSchema, events[2] as AuditEvent);
    forged.eventId = randomUUID();
    if (forged.userIdentity) forged.userIdentity.principalId = "mallory";
    for (const ev of [events[0], events[1], forged, events[2], events[3]]) await publishEvent(ev as AuditEvent);
    await publishCheckpoint(cpAt(key, name, events[3] as AuditEvent));
    await settle();
    expect(await alertsFor(name)).toEqual([
      expect.objectContaining({ kind: "bad-hash", sequence: 3n, eventId: forged.eventId }),
    ]);
  });

  it("reports a forged event with a well-formed hash as a fork naming both events", async () => {
    const { name, key } = await newEdge();
    const events = chain(name, 4);
    const forged = chain(name, 1, 3, events[1]?.tollgate?.hash)[0] as AuditEvent;
    for (const ev of [events[0], events[1], forged, events[2], events[3]]) await publishEvent(ev as AuditEvent);
    await publishCheckpoint(cpAt(key, name, events[3] as AuditEvent));
    await settle();
    const alerts = await alertsFor(name);
    expect(alerts).toEqual([expect.objectContaining({ kind: "fork", sequence: 3n, eventId: events[2]?.eventId })]);
    expect(alerts[0]?.detail).toContain(forged.eventId);
  });

  it("names the event after a dropped one (gap), and a dropped tail through the checkpoint", async () => {
    const { name, key } = await newEdge();
    const events = chain(name, 6);
    for (const ev of [events[0], events[1], events[3], events[4]]) await publishEvent(ev as AuditEvent);
    // events[5] is dropped too; the checkpoint proves it existed.
    await publishCheckpoint(cpAt(key, name, events[5] as AuditEvent));
    await settle();
    expect(await alertsFor(name)).toEqual([
      expect.objectContaining({ kind: "gap", sequence: 4n, eventId: events[3]?.eventId }),
      expect.objectContaining({ kind: "gap", sequence: 6n, eventId: "" }),
    ]);
  });

  it("names a reordered event", async () => {
    const { name } = await newEdge();
    const events = chain(name, 5);
    for (const ev of [events[0], events[1], events[3], events[2], events[4]]) await publishEvent(ev as AuditEvent);
    await settle();
    expect(await alertsFor(name)).toEqual([
      expect.objectContaining({ kind: "gap", sequence: 4n, eventId: events[3]?.eventId }),
      expect.objectContaining({ kind: "reordered", sequence: 3n, eventId: events[2]?.eventId }),
    ]);
  });

  it("rejects a checkpoint signed with an unregistered key, a tampered one, and one that disagrees with the chain", async () => {
    const { name, key } = await newEdge();
    const events = chain(name, 3);
    for (const ev of events) await publishEvent(ev);
    await publishCheckpoint(cpAt(generateEdgeSigningKey(), name, events[2] as AuditEvent));
    const tampered = cpAt(key, name, events[2] as AuditEvent);
    tampered.time = new Date(0).toISOString();
    await publishCheckpoint(tampered);
    await publishCheckpoint(signCheckpoint(key, { edge: name, sequence: 2n, hash: "00".repeat(32) }));
    await settle();
    expect((await alertsFor(name)).map((a) => [a.kind, a.sequence])).toEqual([
      ["bad-checkpoint", 3n],
      ["bad-checkpoint", 3n],
      ["checkpoint-mismatch", 2n],
    ]);
  });

  it("publishes alerts as JSON on <prefix>.alert.v1.<edge>", async () => {
    const { name } = await newEdge();
    const sub = nc.subscribe(auditAlertSubject(subjectPrefix, name), { max: 1, timeout: 10_000 });
    const events = chain(name, 3);
    await publishEvent(events[0] as AuditEvent);
    await publishEvent(events[2] as AuditEvent);
    for await (const m of sub) {
      const alert = fromJsonString(IntegrityAlertSchema, m.string());
      expect(alert).toMatchObject({ edge: name, kind: "gap", sequence: 3n, eventId: events[2]?.eventId });
      expect(JSON.parse(m.string())).toMatchObject({ alertID: alert.alertId, kind: "gap", sequence: "3" });
    }
  });

  it("indexes unchained events without alerting, and alerts when a chaining edge sends one", async () => {
    const name = `edge-${randomBytes(3).toString("hex")}`;
    const before = cp.auditIntegrity.unchainedEvents;
    for (const ev of chain(name, 3)) {
      if (ev.tollgate) Object.assign(ev.tollgate, { sequence: 0n, prevHash: "", hash: "" });
      await publishEvent(ev);
    }
    await settle();
    expect(await alertsFor(name)).toEqual([]);
    expect(cp.auditIntegrity.unchainedEvents - before).toBe(3);
    expect(cp.auditIndex.count({ principal: `p-${name}` })).toBe(3);

    const other = await newEdge();
    const events = chain(other.name, 2);
    await publishEvent(events[0] as AuditEvent);
    const unchained = events[1] as AuditEvent;
    if (unchained.tollgate) Object.assign(unchained.tollgate, { sequence: 0n, prevHash: "", hash: "" });
    await publishEvent(unchained);
    await settle();
    expect(await alertsFor(other.name)).toEqual([
      expect.objectContaining({ kind: "bad-hash", eventId: unchained.eventId }),
    ]);
  });
});

describe("QueryEvents filters", () => {
  it("filters by resource ARN, decision and error code, with a total count", async () => {
    const { name } = await newEdge();
    const events = chain(name, 6);
    for (const ev of events) await publishEvent(ev);
    await settle();
    const principal = `p-${name}`;
    const byArn = await admin.audit.queryEvents({
      filter: { principal, resourceArn: `arn:aws:s3:::bucket-${name}/key-4` },
    });
    expect(byArn.events.map((e) => e.eventId)).toEqual([events[3]?.eventId]);
    const denied = await admin.audit.queryEvents({
      filter: { principal, decision: Decision.DENY },
      includeTotalCount: true,
    });
    expect(denied.events.map((e) => e.tollgate?.sequence)).toEqual([6n, 3n]);
    expect(denied.totalCount).toBe(2n);
    const errors = await admin.audit.queryEvents({ filter: { principal, errorCode: "AccessDenied" }, pageSize: 1 });
    expect(errors.events.map((e) => e.tollgate?.sequence)).toEqual([6n]);
    expect(errors.nextPageToken).not.toBe("");
    const allowed = await admin.audit.queryEvents({
      filter: { principal, decision: Decision.ALLOW },
      includeTotalCount: true,
    });
    expect(allowed.totalCount).toBe(4n);
  });
});

describe("restart", () => {
  it("resumes verification from the persisted heads without false alerts, and still catches a gap", async () => {
    const { name, key } = await newEdge();
    const events = chain(name, 7);
    for (const ev of events.slice(0, 3)) await publishEvent(ev);
    await settle();
    await cp.close();
    cp = newControlPlane();
    await cp.start();
    admin = createControlPlaneClient({
      baseUrl: cp.url,
      token: (await readFile(join(home, "admin.token"), "utf8")).trim(),
    });
    expect(cp.auditIndex.created).toBe(false);
    for (const ev of events.slice(3, 5)) await publishEvent(ev);
    await publishCheckpoint(cpAt(key, name, events[4] as AuditEvent));
    await settle();
    expect(await alertsFor(name)).toEqual([]);
    await publishEvent(events[6] as AuditEvent);
    await settle();
    expect(await alertsFor(name)).toEqual([
      expect.objectContaining({ kind: "gap", sequence: 7n, eventId: events[6]?.eventId }),
    ]);
  });
});
