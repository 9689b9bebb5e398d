// The fault-test stack shared by test/audit-faults.e2e.test.ts and test/audit-cluster.e2e.test.ts:
// a control plane + edge started as processes, a load of real S3 PutObject calls, and raw-stream reads.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { AuditEvent } from "@tollgate/proto";
import { auditEventFromJson, type MotoServer } from "@tollgate/sdk";
import { Redis } from "ioredis";
import { expect } from "vitest";
import { queryAll } from "./audit.js";
import { CLI, type DevInstance, REDIS_URL, runProcess, uniqueNames } from "./dev-instance.js";
import { freePort } from "./nats-server-process.js";
import {
  adminClientFor,
  CONTROL_PLANE_MAIN,
  EDGE_MAIN,
  type ServerProcess,
  startServerProcess,
} from "./tollgate-processes.js";

/** Concurrent calls in {@link runLoad}. */
export const CONCURRENCY = 8;

/** Tollgate gateway credentials. */
export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

/** What happened to one call, from the client's side. */
export interface CallResult {
  key: string;
  /** HTTP status when a response arrived; undefined when the connection failed (outcome unknown). */
  status: number | undefined;
  requestId: string;
  error?: string;
}

/** Path-style S3 client against `endpoint`, no retries. */
export function s3Client(endpoint: string, cred: Credential): S3Client {
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
export async function runLoad(
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

/** Reads the whole stream (`natsUrl`: one URL or several, comma-separated): every audit event (not checkpoints). */
export async function readStream(natsUrl: string, stream: string): Promise<AuditEvent[]> {
  const nc = await connect({ servers: natsUrl.split(",") });
  try {
    const jsm = await jetstreamManager(nc);
    const { first_seq: first, last_seq: last } = (await jsm.streams.info(stream)).state;
    const out: AuditEvent[] = [];
    if (last === 0) return out;
    // Message by message from the stream leader: no consumer to place (in a cluster with a dead
    // node, creating an ephemeral consumer can time out).
    for (let seq = first; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m === null) throw new Error(`${stream}: message ${seq} missing`);
      if (!m.subject.includes(".checkpoint.v1.")) out.push(auditEventFromJson(m.string()));
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Polls `fetch` until it returns at least `count` items; returns the time it took. */
export async function waitForCount(fetch: () => Promise<unknown[]>, count: number, timeoutMs: number): Promise<number> {
  const start = Date.now();
  let got = 0;
  while (Date.now() - start < timeoutMs) {
    got = (await fetch()).length;
    if (got >= count) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`only ${got} of ${count} after ${timeoutMs} ms`);
}

/** The ids that occur more than once (each repeat listed). */
export function duplicates(ids: string[]): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const id of ids) {
    if (seen.has(id)) dups.push(id);
    seen.add(id);
  }
  return dups;
}

/** Deletes every Redis key under `prefix`. */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    await redis.quit();
  }
}

/**
 * `tollgate audit alerts --edge <edge> --json`, parsed, newest first; asserts exit 0. Unless
 * `all`, only chain and checkpoint alerts: a fault may really silence an edge for longer than
 * the silence window (e.g. a NATS leader election under load), so `silent`/`resumed` notes are
 * left out, after asserting that any silence has ended (`resumed` is the newest of them).
 */
export async function alertsFor(env: NodeJS.ProcessEnv, edge: string, { all = false } = {}): Promise<unknown[]> {
  const r = await runProcess(process.execPath, [CLI, "audit", "alerts", "--edge", edge, "--json"], env);
  expect(r.code, r.stderr).toBe(0);
  const alerts = r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { kind: string });
  if (all) return alerts;
  const silence = alerts.filter((a) => a.kind === "silent" || a.kind === "resumed");
  if (silence.length > 0) expect(silence[0]?.kind, "an edge silence that did not end").toBe("resumed");
  return alerts.filter((a) => a.kind !== "silent" && a.kind !== "resumed");
}

/** The NATS server(s) and moto a {@link Stack} uses (read when it starts, so they may be set up later). */
export interface StackInfra {
  /** One NATS URL or several, comma-separated. */
  natsUrl: string;
  moto: MotoServer;
}

/** Control plane + edge started by the test (not `tollgate dev`), sharing the private NATS and moto. */
export class Stack {
  readonly names = uniqueNames();
  readonly #infra: () => StackInfra;
  /** Extra environment for the control plane (e.g. `TOLLGATE_AUDIT_REPLICAS`). */
  controlPlaneEnv: NodeJS.ProcessEnv = {};
  /** Extra environment for the edge (e.g. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). */
  edgeEnv: NodeJS.ProcessEnv = {};

  constructor(infra: () => StackInfra) {
    this.#infra = infra;
  }

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
      TOLLGATE_NATS_URL: this.#infra().natsUrl,
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
    const { moto } = this.#infra();
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
      ...this.controlPlaneEnv,
      TOLLGATE_API_LISTEN: `127.0.0.1:${this.apiPort}`,
    });
  }

  /**
   * Starts the edge. The first start enrolls it with a one-time token; restarts find
   * `edge/enrollment.json` in the home and need none.
   */
  async startEdge(): Promise<void> {
    if (this.#enrollToken === undefined) {
      const { token } = await adminClientFor(this.home, this.cp.url).edgeAdmin.createEnrollmentToken({
        edgeName: this.edgeName,
      });
      this.#enrollToken = token;
    }
    this.edge = await startServerProcess("edge", EDGE_MAIN, {
      ...this.baseEnv,
      TOLLGATE_EDGE_LISTEN: `127.0.0.1:${this.edgePort}`,
      TOLLGATE_CONTROL_PLANE_URL: `http://127.0.0.1:${this.apiPort}`,
      TOLLGATE_EDGE_NAME: this.edgeName,
      TOLLGATE_EDGE_ENROLL_TOKEN: this.#enrollToken,
      ...this.edgeEnv,
    });
  }

  #enrollToken: string | undefined;

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
    const nc = await connect({ servers: this.#infra().natsUrl.split(",") }).catch(() => undefined);
    if (nc !== undefined) {
      await (await jetstreamManager(nc)).streams.delete(this.names.stream).catch(() => false);
      await nc.close();
    }
    if (this.home !== "") rmSync(this.home, { recursive: true, force: true });
  }
}
