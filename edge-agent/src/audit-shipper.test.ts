import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromJsonString } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type AuditEvent, AuditEventSchema, type Checkpoint, CheckpointSchema, Decision } from "@tollgate/proto";
import { auditEventFromJson, ChainVerifier, generateEdgeSigningKey } from "@tollgate/sdk";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { AuditJournal, JournalRecordType } from "./audit-journal.js";
import { AuditShipper, encodeJournalEvent } from "./audit-shipper.js";

// A nats-server of our own per test, so it can be killed and restarted (never the machine's).
interface Nats {
  url: string;
  port: number;
  dir: string;
  proc: ChildProcess;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a !== null ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

async function startNats(port?: number, dir?: string): Promise<Nats> {
  const p = port ?? (await freePort());
  const d = dir ?? fs.mkdtempSync(join(tmpdir(), "tollgate-nats-"));
  const proc = spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(p), "-js", "-sd", d], {
    stdio: "ignore",
  });
  const url = `nats://127.0.0.1:${p}`;
  for (let i = 0; i < 100; i++) {
    try {
      const nc = await connect({ servers: url, reconnect: false });
      await jetstreamManager(nc).then((m) => m.getAccountInfo());
      await nc.close();
      return { url, port: p, dir: d, proc };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error("nats-server did not start");
}

async function killNats(n: Nats, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
  const exited = new Promise((r) => n.proc.once("exit", r));
  n.proc.kill(signal);
  await exited;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const servers: Nats[] = [];
afterAll(async () => {
  for (const s of servers) {
    await killNats(s);
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
});

const PREFIX = "tgtest";
const STREAM = "AUDIT_TEST";

async function setup(): Promise<{ nats: Nats; dir: string }> {
  const nats = await startNats();
  servers.push(nats);
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: STREAM,
    subjects: [`${PREFIX}.audit.>`, `${PREFIX}.checkpoint.>`],
    duplicate_window: 120_000_000_000,
  });
  await nc.close();
  const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-ship-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { nats, dir };
}

function event(i: number, edge = "edge-a"): AuditEvent {
  return create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: randomUUID(),
    eventTime: new Date().toISOString(),
    eventSource: "s3.amazonaws.com",
    eventName: "PutObject",
    awsRegion: "us-east-1",
    tollgate: {
      connection: "conn",
      edge,
      decision: Decision.ALLOW,
      reason: "allowed",
      signingName: "s3",
      bytesIn: BigInt(i),
    },
  });
}

/** Writes `n` calls (intent + completion) into the journal; returns their event ids. */
async function writeCalls(j: AuditJournal, n: number): Promise<string[]> {
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const e = event(i);
      ids.push(e.eventId);
      await j.append(JournalRecordType.Intent, encodeJournalEvent(PREFIX, e));
      e.tollgate = { ...(e.tollgate as NonNullable<AuditEvent["tollgate"]>), outcome: "completed", httpStatus: 200 };
      await j.append(JournalRecordType.Completion, encodeJournalEvent(PREFIX, e));
    }),
  );
  return ids;
}

interface StreamContent {
  events: AuditEvent[];
  checkpoints: Checkpoint[];
  problems: string[];
}

async function readStream(url: string, key: { keyId: string; publicKeyPem: string }): Promise<StreamContent> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(STREAM)).state.messages;
    const consumer = await jetstream(nc).consumers.get(STREAM);
    const verifier = new ChainVerifier((_, keyId) => (keyId === key.keyId ? key.publicKeyPem : undefined));
    const out: StreamContent = { events: [], checkpoints: [], problems: [] };
    let seen = 0;
    while (seen < total) {
      const batch = await consumer.fetch({ max_messages: 500, expires: 2000 });
      for await (const m of batch) {
        seen++;
        if (m.subject.startsWith(`${PREFIX}.checkpoint.`)) {
          const cp = fromJsonString(CheckpointSchema, m.string());
          out.checkpoints.push(cp);
          out.problems.push(...verifier.addCheckpoint(cp).map((p) => `${p.kind}: ${p.detail}`));
        } else {
          const e = auditEventFromJson(m.string());
          out.events.push(e);
          out.problems.push(...verifier.addEvent(e).map((p) => `${p.kind} at ${p.sequence}: ${p.detail}`));
        }
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

function shipperFor(j: AuditJournal, url: string, key = generateEdgeSigningKey(), checkpointIntervalMs = 5000) {
  const s = new AuditShipper({
    journal: j,
    connect: () => connect({ servers: url, reconnect: false, timeout: 1000 }),
    edge: "edge-a",
    signingKey: key,
    subjectPrefix: () => PREFIX,
    checkpointIntervalMs,
    ackTimeoutMs: 2000,
    maxRetryDelayMs: 300,
  });
  return { shipper: s, key };
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function expectExactlyOnce(content: StreamContent, ids: string[]): void {
  const counts = new Map<string, number>();
  for (const e of content.events) counts.set(e.eventId, (counts.get(e.eventId) ?? 0) + 1);
  expect(counts.size).toBe(ids.length);
  for (const id of ids) expect(counts.get(id)).toBe(1);
  expect(content.problems).toEqual([]);
  expect(content.events.map((e) => e.tollgate?.sequence)).toEqual(
    Array.from({ length: content.events.length }, (_, i) => BigInt(i + 1)),
  );
}

describe("AuditShipper", () => {
  it("ships 1000 calls exactly once, in chain order, across a SIGKILL and restart of NATS", async () => {
    const { nats, dir } = await setup();
    const j = await AuditJournal.open({ dir });
    const { shipper, key } = shipperFor(j, nats.url);
    await shipper.start();
    const writing = writeCalls(j, 1000);
    await until(() => shipper.stats.shipped >= 200, 20_000);
    await killNats(nats);
    const ids = await writing; // the journal keeps taking calls while NATS is down
    await new Promise((r) => setTimeout(r, 500));
    const restarted = await startNats(nats.port, nats.dir);
    servers.push(restarted);
    await until(() => shipper.idle, 30_000);
    expect(await shipper.checkpointNow()).toBe(true);
    await shipper.close();
    await j.close();
    const content = await readStream(restarted.url, key);
    expectExactlyOnce(content, ids);
    expect(shipper.stats.connects).toBeGreaterThanOrEqual(2);
    expect(content.checkpoints.at(-1)?.sequence).toBe(1000n);
    expect(content.checkpoints.at(-1)?.hash).toBe(content.events.at(-1)?.tollgate?.hash);
    expect(content.events.every((e) => e.tollgate?.outcome === "completed")).toBe(true);
  }, 90_000);

  it("replays after losing its state (crash between ack and state write) without duplicates or a fork", async () => {
    const { nats, dir } = await setup();
    const j = await AuditJournal.open({ dir });
    const { shipper, key } = shipperFor(j, nats.url);
    await shipper.start();
    const first = await writeCalls(j, 300);
    await until(() => shipper.idle, 20_000);
    await shipper.close();
    const stateFile = join(dir, "shipper-state.json");
    const stale = fs.readFileSync(stateFile);
    // Ship more, then roll the state back as if the process died before persisting it.
    const s2 = shipperFor(j, nats.url, key).shipper;
    await s2.start();
    const second = await writeCalls(j, 300);
    await until(() => s2.idle && s2.stats.shipped === 300, 20_000);
    await s2.close();
    fs.writeFileSync(stateFile, stale);
    const s3 = shipperFor(j, nats.url, key).shipper;
    await s3.start();
    const third = await writeCalls(j, 100);
    await until(() => s3.idle, 20_000);
    await s3.close();
    await j.close();
    expect(s3.stats.duplicates).toBe(300);
    expect(s3.stats.shipped).toBe(100);
    const content = await readStream(nats.url, key);
    expectExactlyOnce(content, [...first, ...second, ...third]);
  }, 60_000);

  it("ships intents of an interrupted run once, with outcome unknown, after the restart", async () => {
    const { nats, dir } = await setup();
    const j = await AuditJournal.open({ dir });
    const done = await writeCalls(j, 5);
    const interrupted: string[] = [];
    for (let i = 0; i < 3; i++) {
      const e = event(100 + i);
      interrupted.push(e.eventId);
      await j.append(JournalRecordType.Intent, encodeJournalEvent(PREFIX, e));
    }
    await j.close(); // the edge "crashes": no completions for these three
    const j2 = await AuditJournal.open({ dir });
    const { shipper, key } = shipperFor(j2, nats.url);
    await shipper.start();
    const after = await writeCalls(j2, 2);
    await until(() => shipper.idle, 20_000);
    await shipper.close();
    await j2.close();
    const content = await readStream(nats.url, key);
    expectExactlyOnce(content, [...done, ...interrupted, ...after]);
    const unknown = content.events.filter((e) => e.tollgate?.outcome === "unknown");
    expect(unknown.map((e) => e.eventId).sort()).toEqual([...interrupted].sort());
    expect(unknown.every((e) => e.errorCode === "EdgeInterrupted")).toBe(true);
    expect(shipper.stats.interrupted).toBe(3);
  }, 30_000);

  it("publishes signed checkpoints while idle and deletes shipped segments", async () => {
    const { nats, dir } = await setup();
    const j = await AuditJournal.open({ dir, segmentBytes: 4096 });
    const { shipper, key } = shipperFor(j, nats.url, generateEdgeSigningKey(), 200);
    await shipper.start();
    await until(() => shipper.stats.checkpoints >= 2, 5000); // idle: sequence 0
    const ids = await writeCalls(j, 200);
    await until(() => shipper.idle, 20_000);
    const checkpointsBefore = shipper.stats.checkpoints;
    await until(() => shipper.stats.checkpoints >= checkpointsBefore + 2, 5000);
    await shipper.close();
    const segments = fs.readdirSync(dir).filter((n) => n.endsWith(".wal"));
    expect(segments.length).toBeLessThanOrEqual(2);
    expect(j.backlogBytes).toBeLessThan(4096 + 2048);
    await j.close();
    const content = await readStream(nats.url, key);
    expectExactlyOnce(content, ids);
    expect(content.checkpoints[0]?.sequence).toBe(0n);
    expect(content.checkpoints.at(-1)?.sequence).toBe(200n);
    expect(content.checkpoints.every((c) => c.edge === "edge-a" && c.signature !== "")).toBe(true);
  }, 30_000);
});

export type { NatsConnection };
