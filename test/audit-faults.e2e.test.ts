// Issue #4: the audit trail survives faults. Every test runs its own nats-server (SIGKILLed and
// restarted at will); in every case each call that reached AWS has exactly one event, no event
// is duplicated in the stream, and the chains verify.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { AuditEvent } from "@tollgate/proto";
import { auditEventFromJson, type MotoServer, startMotoServer } from "@tollgate/sdk";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryAll } from "./support/audit.js";
import { CLI, type DevInstance, REDIS_URL, runProcess, startDev, uniqueNames } from "./support/dev-instance.js";
import { freePort, NatsServerProcess } from "./support/nats-server-process.js";
import {
  adminClientFor,
  CONTROL_PLANE_MAIN,
  EDGE_MAIN,
  type ServerProcess,
  startServerProcess,
} from "./support/tollgate-processes.js";

const N = 300;
const CONCURRENCY = 8;

let nats: NatsServerProcess;
let moto: MotoServer;

beforeAll(async () => {
  [nats, moto] = await Promise.all([NatsServerProcess.start(), startMotoServer({ verifySignatures: true })]);
});

afterAll(async () => {
  await moto?.close();
  await nats?.dispose();
});

interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

/** What happened to one call, from the client's side. */
interface CallResult {
  key: string;
  /** HTTP status when a response arrived; undefined when the connection failed (outcome unknown). */
  status: number | undefined;
  requestId: string;
  error?: string;
}

function s3Client(endpoint: string, cred: Credential): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: {
      accessKeyId: cred.accessKeyId,
      secretAccessKey: cred.secretAccessKey,
      sessionToken: cred.sessionToken,
    },
    maxAttempts: 1,
  });
}

/**
 * Runs `n` PutObject calls, `CONCURRENCY` at a time. `onProgress(done)` runs after each call; it
 * may return a promise, and no new call starts until it resolves (so a test can pause the load
 * while it restarts something).
 */
async function runLoad(
  s3: S3Client,
  bucket: string,
  prefix: string,
  n: number,
  onProgress: (done: number) => void | Promise<void>,
): Promise<CallResult[]> {
  const results: CallResult[] = [];
  let next = 0;
  let done = 0;
  let gate: Promise<void> = Promise.resolve();
  async function worker(): Promise<void> {
    for (;;) {
      await gate;
      const i = next++;
      if (i >= n) return;
      const key = `${prefix}/${String(i).padStart(4, "0")}`;
      try {
        const res = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body ${i}` }));
        results.push({ key, status: res.$metadata.httpStatusCode, requestId: res.$metadata.requestId ?? "" });
      } catch (err) {
        const e = err as { $metadata?: { httpStatusCode?: number; requestId?: string }; message?: string };
        results.push({
          key,
          status: e.$metadata?.httpStatusCode,
          requestId: e.$metadata?.requestId ?? "",
          error: String(e.message ?? err),
        });
      }
      done++;
      const r = onProgress(done);
      if (r !== undefined) {
        const p = r;
        gate = gate.then(() => p);
        await p;
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
  return results;
}

function objectKeyOf(e: AuditEvent, bucket: string): string {
  const arn = e.resources.find((r) => r.type === "AWS::S3::Object")?.arn ?? "";
  return arn.startsWith(`arn:aws:s3:::${bucket}/`) ? arn.slice(`arn:aws:s3:::${bucket}/`.length) : "";
}

/** Reads the whole stream with an ordered consumer: every audit event (not checkpoints). */
async function readStream(natsUrl: string, stream: string): Promise<AuditEvent[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info(stream)).state.last_seq;
    const out: AuditEvent[] = [];
    if (last === 0) return out;
    const consumer = await jetstream(nc).consumers.get(stream);
    const messages = await consumer.consume();
    for await (const m of messages) {
      if (!m.subject.includes(".checkpoint.v1.")) out.push(auditEventFromJson(m.string()));
      if (m.seq >= last) break;
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Polls `fetch` until it returns at least `count` items; returns the time it took. */
async function waitForCount(fetch: () => Promise<unknown[]>, count: number, timeoutMs: number): Promise<number> {
  const start = Date.now();
  let got = 0;
  while (Date.now() - start < timeoutMs) {
    got = (await fetch()).length;
    if (got >= count) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`only ${got} of ${count} after ${timeoutMs} ms`);
}

function duplicates(ids: string[]): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const id of ids) {
    if (seen.has(id)) dups.push(id);
    seen.add(id);
  }
  return dups;
}

async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    await redis.quit();
  }
}

async function alertsFor(env: NodeJS.ProcessEnv, edge: string): Promise<unknown[]> {
  const r = await runProcess(process.execPath, [CLI, "audit", "alerts", "--edge", edge, "--json"], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
}

/**
 * Expectations common to every fault: exactly one event per answered call, matching it (by object
 * key, eventName, x-amz-request-id); at most one per call cut off, marked as interrupted unless
 * its completion was journaled; no event for anything else.
 */
function expectOneEventPerCall(
  events: AuditEvent[],
  calls: CallResult[],
  bucket: string,
  { edgeKilled = false } = {},
): void {
  expect(duplicates(events.map((e) => e.eventId))).toEqual([]);
  const byKey = new Map<string, AuditEvent[]>();
  for (const e of events) {
    const k = objectKeyOf(e, bucket);
    byKey.set(k, [...(byKey.get(k) ?? []), e]);
  }
  const problems: string[] = [];
  for (const c of calls) {
    const evs = byKey.get(c.key) ?? [];
    const e = evs[0];
    if (c.status !== undefined) {
      if (evs.length !== 1 || e === undefined) {
        problems.push(`${c.key} (HTTP ${c.status}, request id ${c.requestId}): ${evs.length} events`);
        continue;
      }
      if (e.eventName !== "PutObject") problems.push(`${c.key}: eventName ${e.eventName}`);
      // A call whose response was sent just before the edge was killed, but whose completion was
      // not yet journaled, is shipped from its intent as interrupted (see the report of issue #4).
      if (edgeKilled && e.tollgate?.outcome === "unknown" && e.errorCode === "EdgeInterrupted") continue;
      if (c.status === 200 && e.requestId !== c.requestId) {
        problems.push(`${c.key}: requestID "${e.requestId}" != x-amz-request-id "${c.requestId}"`);
      }
      if (c.status === 200 && e.tollgate?.outcome !== "completed") {
        problems.push(`${c.key}: outcome "${e.tollgate?.outcome}"`);
      }
    } else {
      if (evs.length > 1) problems.push(`interrupted ${c.key}: ${evs.length} events`);
      if (e !== undefined && e.tollgate?.outcome !== "completed") {
        if (e.tollgate?.outcome !== "unknown" || e.errorCode !== "EdgeInterrupted") {
          problems.push(`interrupted ${c.key}: outcome "${e.tollgate?.outcome}", errorCode ${e.errorCode}`);
        }
      }
    }
  }
  const callKeys = new Set(calls.map((c) => c.key));
  for (const k of byKey.keys()) if (!callKeys.has(k)) problems.push(`event for unknown key "${k}"`);
  expect(problems).toEqual([]);
}

describe("NATS stopped and restarted during load", () => {
  let dev: DevInstance | undefined;

  afterAll(async () => {
    if (dev === undefined) return;
    // stop() also cleans the shared NATS; our stream lives on the private server, cleaned with it.
    await dev.stop().catch(() => undefined);
  });

  it("journals while NATS is down and ships every event exactly once after it returns", async () => {
    dev = await startDev([], { TOLLGATE_NATS_URL: nats.url });
    const d = dev;
    const principal = `fault-nats-${d.names.id}`;
    const issued = await d.cli(["credentials", "issue", "--principal", principal, "--ttl", "1h", "--format", "json"]);
    expect(issued.code, issued.stderr).toBe(0);
    const s3 = s3Client(d.edgeUrl, JSON.parse(issued.stdout) as Credential);
    const bucket = `fault-nats-${d.names.id}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));

    let restartedAt = 0;
    let killedAt = 0;
    let duringOutage = 0;
    let outage: Promise<void> | undefined;
    const calls = await runLoad(s3, bucket, "k", N, (done) => {
      if (killedAt !== 0 && restartedAt === 0) duringOutage++;
      if (done === 100 && outage === undefined) {
        // Not awaited: the load goes on while NATS is down.
        outage = (async () => {
          await nats.kill();
          killedAt = Date.now();
          await sleep(1000);
          await nats.restart();
          restartedAt = Date.now();
        })();
      }
    });
    await outage;
    expect(calls.filter((c) => c.status !== 200)).toEqual([]);
    expect(calls).toHaveLength(N);

    const loadEndedMs = Date.now() - restartedAt;
    await waitForCount(() => queryAll(d, { principal, operation: "PutObject" }), N, 60_000);
    const catchUpMs = Date.now() - restartedAt;
    await sleep(1000);
    const events = await queryAll(d, { principal, operation: "PutObject" });
    expect(events).toHaveLength(N);
    expectOneEventPerCall(events, calls, bucket);

    const raw = (await readStream(nats.url, d.names.stream)).filter(
      (e) => e.userIdentity?.principalId === principal && e.eventName === "PutObject",
    );
    expect(duplicates(raw.map((e) => e.eventId))).toEqual([]);
    expect(raw).toHaveLength(N);

    const verify = await d.cli(["audit", "verify"]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(await alertsFor(d.env, "dev-edge")).toEqual([]);
    console.info(
      `[audit-faults] NATS: ${N} calls (${duringOutage} answered while NATS was down), ${events.length} events, load ended ${loadEndedMs} ms and all indexed ${catchUpMs} ms after NATS restart`,
    );
  });
});

/** Control plane + edge started by the test (not `tollgate dev`), sharing the private NATS and moto. */
class Stack {
  readonly names = uniqueNames();
  home = "";
  readonly edgeName = `edge-${this.names.id}`;
  cp!: ServerProcess;
  edge!: ServerProcess;
  apiPort = 0;
  edgePort = 0;

  get baseEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TOLLGATE_HOME: this.home,
      TOLLGATE_NATS_URL: nats.url,
      TOLLGATE_REDIS_URL: REDIS_URL,
      TOLLGATE_REDIS_PREFIX: this.names.redisPrefix,
      TOLLGATE_AUDIT_STREAM: this.names.stream,
      TOLLGATE_AUDIT_SUBJECT_PREFIX: this.names.subjectPrefix,
      TOLLGATE_EDGE_PROXY_LISTEN: "",
    };
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]) delete env[k];
    return env;
  }

  get cliEnv(): NodeJS.ProcessEnv {
    return { ...this.baseEnv, TOLLGATE_API_URL: this.cp.url };
  }

  get edgeUrl(): string {
    return `http://127.0.0.1:${this.edgePort}`;
  }

  async start(): Promise<void> {
    this.home = mkdtempSync(join(tmpdir(), "tollgate-faults-"));
    [this.apiPort, this.edgePort] = await Promise.all([freePort(), freePort()]);
    await this.startControlPlane();
    await adminClientFor(this.home, this.cp.url).connections.createConnection({
      connection: {
        name: "default",
        region: "us-east-1",
        upstreamEndpoint: moto.endpoint,
        upstreamAccessKeyId: moto.accessKeyId,
        accountId: moto.accountId,
      },
      upstreamSecretAccessKey: moto.secretAccessKey,
      upstreamSessionToken: "",
      allowReplace: true,
    });
    await this.startEdge();
  }

  async startControlPlane(): Promise<void> {
    this.cp = await startServerProcess("control plane", CONTROL_PLANE_MAIN, {
      ...this.baseEnv,
      TOLLGATE_API_LISTEN: `127.0.0.1:${this.apiPort}`,
    });
  }

  async startEdge(): Promise<void> {
    this.edge = await startServerProcess("edge", EDGE_MAIN, {
      ...this.baseEnv,
      TOLLGATE_EDGE_LISTEN: `127.0.0.1:${this.edgePort}`,
      TOLLGATE_CONTROL_PLANE_URL: `http://127.0.0.1:${this.apiPort}`,
      TOLLGATE_EDGE_NAME: this.edgeName,
    });
  }

  async issue(principal: string): Promise<Credential> {
    const r = await adminClientFor(this.home, this.cp.url).credentials.issueCredential({
      principal,
      connection: "default",
      ttlSeconds: 3600n,
    });
    return { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, sessionToken: r.sessionToken };
  }

  query(principal: string): Promise<AuditEvent[]> {
    return queryAll({ home: this.home, apiUrl: this.cp.url } as DevInstance, { principal, operation: "PutObject" });
  }

  async stop(): Promise<void> {
    await this.edge?.stop().catch(() => undefined);
    await this.cp?.stop().catch(() => undefined);
    await deleteRedisKeys(this.names.redisPrefix).catch(() => undefined);
    const nc = await connect({ servers: nats.url }).catch(() => undefined);
    if (nc !== undefined) {
      await (await jetstreamManager(nc)).streams.delete(this.names.stream).catch(() => false);
      await nc.close();
    }
    if (this.home !== "") rmSync(this.home, { recursive: true, force: true });
  }
}

async function verifyClean(stack: Stack): Promise<void> {
  const verify = await runProcess(process.execPath, [CLI, "audit", "verify"], stack.cliEnv);
  expect(verify.stderr).toBe("");
  expect(verify.code).toBe(0);
  expect(verify.stdout).toContain(`edge ${stack.edgeName}:`);
  expect(await alertsFor(stack.cliEnv, stack.edgeName)).toEqual([]);
}

describe("edge SIGKILLed mid-load and restarted", () => {
  const stack = new Stack();
  afterAll(() => stack.stop());

  it("ships each completed call once, interrupted ones at most once, on one unbroken chain", async () => {
    await stack.start();
    const principal = `fault-edge-${stack.names.id}`;
    const s3 = s3Client(stack.edgeUrl, await stack.issue(principal));
    const bucket = `fault-edge-${stack.names.id}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));

    let restarted = false;
    const calls = await runLoad(s3, bucket, "k", N, async (done) => {
      if (done === 100 && !restarted) {
        restarted = true;
        await stack.edge.stop("SIGKILL");
        await stack.startEdge();
      }
    });
    const answered = calls.filter((c) => c.status !== undefined);
    const cutOff = calls.filter((c) => c.status === undefined);
    expect(answered.filter((c) => c.status !== 200)).toEqual([]);
    expect(cutOff.every((c) => c.error !== undefined)).toBe(true);
    expect(cutOff.length).toBeLessThanOrEqual(CONCURRENCY);
    expect(answered.length).toBeGreaterThanOrEqual(N - CONCURRENCY);

    await waitForCount(() => stack.query(principal), answered.length, 30_000);
    await sleep(1500);
    const events = await stack.query(principal);
    expectOneEventPerCall(events, calls, bucket, { edgeKilled: true });
    const interrupted = events.filter((e) => e.tollgate?.outcome === "unknown");
    const answeredInterrupted = interrupted.filter((e) => answered.some((c) => c.key === objectKeyOf(e, bucket)));
    for (const e of interrupted) expect(e.errorCode).toBe("EdgeInterrupted");
    expect(interrupted.length).toBeLessThanOrEqual(CONCURRENCY);

    const raw = (await readStream(nats.url, stack.names.stream)).filter((e) => e.tollgate?.edge === stack.edgeName);
    expect(duplicates(raw.map((e) => e.eventId))).toEqual([]);
    expect(raw.map((e) => e.tollgate?.sequence)).toEqual(raw.map((_, i) => BigInt(i + 1)));

    await verifyClean(stack);
    console.info(
      `[audit-faults] edge kill: ${N} calls, ${answered.length} answered, ${cutOff.length} cut off, ` +
        `${events.length} events (${interrupted.length} EdgeInterrupted, ${answeredInterrupted.length} of them answered 200)`,
    );
  });
});

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  describe(`control plane stopped with ${signal} and restarted during load`, () => {
    const stack = new Stack();
    afterAll(() => stack.stop());

    it("keeps serving from the last config and indexes every call once, without false alerts", async () => {
      await stack.start();
      const principal = `fault-cp-${stack.names.id}`;
      const s3 = s3Client(stack.edgeUrl, await stack.issue(principal));
      const bucket = `fault-cp-${stack.names.id}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));

      let restart: Promise<void> | undefined;
      const calls = await runLoad(s3, bucket, "k", N, (done) => {
        if (done === 100 && restart === undefined) {
          restart = (async () => {
            await stack.cp.stop(signal);
            await sleep(500);
            await stack.startControlPlane();
          })();
        }
      });
      await restart;
      const restartedAt = Date.now();
      expect(calls.filter((c) => c.status !== 200)).toEqual([]);

      // Generous: a message delivered to the killed control plane but not acked is redelivered
      // only after the consumer's ack_wait (30 s); see the report of issue #4.
      await waitForCount(() => stack.query(principal), N, 45_000);
      const caughtUpMs = Date.now() - restartedAt;
      await sleep(1000);
      const events = await stack.query(principal);
      expect(events).toHaveLength(N);
      expectOneEventPerCall(events, calls, bucket);
      console.info(
        `[audit-faults] control plane ${signal}: ${N} calls, ${events.length} events, all indexed ${caughtUpMs} ms after restart`,
      );
      await verifyClean(stack);
    });
  });
}
