import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { gunzipSync, gzipSync } from "node:zlib";
import { clone, create, toJsonString } from "@bufbuild/protobuf";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type AuditEvent, AuditEventSchema, type Checkpoint, CheckpointSchema, Decision } from "@tollgate/proto";
import {
  auditCheckpointSubject,
  auditEventFromJson,
  auditEventToJson,
  auditSubject,
  chainEvent,
  createControlPlaneClient,
  generateEdgeSigningKey,
  signCheckpoint,
} from "@tollgate/sdk";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, NATS_URL, REDIS_URL, REPO_ROOT, runProcess, uniqueNames } from "./support/dev-instance.js";

const CONTROL_PLANE = join(REPO_ROOT, "control-plane", "dist", "main.js");
const names = uniqueNames();
const edge = `edge-${names.id}`;
const key = generateEdgeSigningKey();
const events: AuditEvent[] = [];
let home: string;
let out: string;
let child: ChildProcess;
let env: NodeJS.ProcessEnv;
let nc: NatsConnection;
let js: JetStreamClient;

function chain(n: number): AuditEvent[] {
  let prev = "";
  const list: AuditEvent[] = [];
  for (let i = 1; i <= n; i++) {
    const deny = i % 4 === 0;
    const ev = create(AuditEventSchema, {
      eventVersion: "1.0",
      eventId: randomUUID(),
      eventTime: new Date(Date.now() - 10 * 60_000 + i * 1000).toISOString(),
      eventSource: "s3.amazonaws.com",
      eventName: deny ? "DeleteObject" : "GetObject",
      awsRegion: "us-east-1",
      userIdentity: { type: "TollgatePrincipal", principalId: "ci-bot" },
      resources: [{ arn: `arn:aws:s3:::bucket-${names.id}/k${i}`, type: "AWS::S3::Object" }],
      eventType: "AwsApiCall",
      ...(deny ? { errorCode: "AccessDenied", errorMessage: "denied" } : {}),
      tollgate: { connection: "default", edge, decision: deny ? Decision.DENY : Decision.ALLOW, signingName: "s3" },
    });
    prev = chainEvent(ev, BigInt(i), prev);
    list.push(ev);
  }
  return list;
}

async function publish(ev: AuditEvent): Promise<void> {
  await js.publish(
    auditSubject(names.subjectPrefix, {
      connection: "default",
      principal: "ci-bot",
      service: "s3",
      operation: ev.eventName,
    }),
    auditEventToJson(ev),
    { msgID: randomUUID() },
  );
}

async function publishCheckpoint(c: Checkpoint): Promise<void> {
  await js.publish(auditCheckpointSubject(names.subjectPrefix, edge), toJsonString(CheckpointSchema, c));
}

function cli(args: string[]) {
  return runProcess(process.execPath, [CLI, ...args], env);
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tollgate-integrity-e2e-"));
  out = join(home, "export");
  const cpEnv = {
    ...process.env,
    TOLLGATE_HOME: home,
    TOLLGATE_NATS_URL: NATS_URL,
    TOLLGATE_REDIS_URL: REDIS_URL,
    TOLLGATE_REDIS_PREFIX: names.redisPrefix,
    TOLLGATE_AUDIT_STREAM: names.stream,
    TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
    TOLLGATE_API_LISTEN: "127.0.0.1:0",
  };
  child = spawn(process.execPath, [CONTROL_PLANE], { env: cpEnv, stdio: ["ignore", "pipe", "pipe"] });
  const apiUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("control plane not ready")), 30_000);
    child.once("exit", (code) => reject(new Error(`control plane exited ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const rec = JSON.parse(line) as { event?: string; url?: string };
      if (rec.event === "ready" && rec.url !== undefined) {
        clearTimeout(timer);
        resolve(rec.url);
      }
    });
  });
  env = { ...cpEnv, TOLLGATE_API_URL: apiUrl };
  // The edge enrolls its key (which registers it for checkpoint verification).
  const admin = createControlPlaneClient({
    baseUrl: apiUrl,
    token: (await readFile(join(home, "admin.token"), "utf8")).trim(),
  });
  const { token } = await admin.edgeAdmin.createEnrollmentToken({ edgeName: edge });
  await createControlPlaneClient({ baseUrl: apiUrl }).edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem });
  nc = await connect({ servers: NATS_URL });
  js = jetstream(nc);
  events.push(...chain(8));
  for (const [i, ev] of events.entries()) {
    await publish(ev);
    if (i === 3 || i === 7) {
      await publishCheckpoint(signCheckpoint(key, { edge, sequence: BigInt(i + 1), hash: ev.tollgate?.hash ?? "" }));
    }
  }
});

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${names.redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  if (nc !== undefined) {
    await (await jetstreamManager(nc)).streams.delete(names.stream).catch(() => false);
    await nc.close();
  }
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe("tollgate audit verify / export / query", () => {
  it("verifies the intact stream, whole and from --since", async () => {
    const all = await cli(["audit", "verify"]);
    expect(all.stderr).toBe("");
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(`edge ${edge}: 8 events, head 8, checkpoint 8`);
    expect(all.stdout).toContain("OK: 8 events and 2 checkpoints verified");
    const recent = await cli(["audit", "verify", "--since", "1h"]);
    expect(recent.code).toBe(0);
  });

  it("queries by resource, decision and error code", async () => {
    const res = await cli([
      "audit",
      "query",
      "--since",
      "1h",
      "--decision",
      "deny",
      "--error-code",
      "AccessDenied",
      "--json",
    ]);
    expect(res.code).toBe(0);
    const lines = res.stdout
      .trim()
      .split("\n")
      .map((l) => auditEventFromJson(l));
    expect(lines.map((e) => e.tollgate?.sequence)).toEqual([8n, 4n]);
    const byArn = await cli(["audit", "query", "--resource", `arn:aws:s3:::bucket-${names.id}/k3`, "--json"]);
    expect(
      byArn.stdout
        .trim()
        .split("\n")
        .map((l) => auditEventFromJson(l).eventId),
    ).toEqual([events[2]?.eventId]);
  });

  it("exports all three formats, which parse back, and verifies the exports offline", async () => {
    for (const format of ["cloudtrail", "ocsf", "jsonl"]) {
      const res = await cli(["audit", "export", "--since", "1h", "--format", format, "--out", join(out, format)]);
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/\t8 events\n.*\t2 checkpoints\n$/);
    }
    const file = async (format: string, suffix: string) => {
      const dir = join(out, format);
      const name = (await readdir(dir)).find((f) => f.endsWith(suffix));
      if (name === undefined) throw new Error(`no ${suffix} in ${dir}`);
      return join(dir, name);
    };
    const ct = JSON.parse(gunzipSync(await readFile(await file("cloudtrail", ".cloudtrail.json.gz"))).toString()) as {
      Records: Array<{ eventID: string; eventName: string; tollgate: { sequence: string } }>;
    };
    expect(ct.Records.map((r) => r.eventID)).toEqual(events.map((e) => e.eventId));
    const ocsf = gunzipSync(await readFile(await file("ocsf", ".ocsf.jsonl.gz")))
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { class_uid: number; api: { operation: string }; metadata: { uid: string } });
    expect(ocsf.map((r) => r.class_uid)).toEqual(Array(8).fill(6003));
    expect(ocsf.map((r) => r.metadata.uid)).toEqual(events.map((e) => e.eventId));
    const jsonl = gunzipSync(await readFile(await file("jsonl", ".jsonl.gz")))
      .toString()
      .trim()
      .split("\n")
      .map((l) => auditEventFromJson(l));
    expect(jsonl.map((e) => e.tollgate?.hash)).toEqual(events.map((e) => e.tollgate?.hash));
    const sidecar = JSON.parse(gunzipSync(await readFile(await file("jsonl", ".checkpoints.json.gz"))).toString()) as {
      edgeKeys: Array<{ edgeName: string; keyId: string }>;
      checkpoints: unknown[];
    };
    expect(sidecar.edgeKeys).toContainEqual(expect.objectContaining({ edgeName: edge, keyId: key.keyId }));
    expect(sidecar.checkpoints).toHaveLength(2);

    for (const f of [await file("cloudtrail", ".cloudtrail.json.gz"), await file("jsonl", ".jsonl.gz")]) {
      const res = await cli(["audit", "verify", "--file", f]);
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      expect(res.stdout).toContain("OK: 8 events and 2 checkpoints verified");
    }

    // Tamper with one record of the CloudTrail file and re-gzip it.
    const ctFile = await file("cloudtrail", ".cloudtrail.json.gz");
    const record = ct.Records[4];
    if (record === undefined) throw new Error("no record 5");
    record.eventName = "PutBucketPolicy";
    await writeFile(ctFile, gzipSync(JSON.stringify(ct)));
    const bad = await cli(["audit", "verify", "--file", ctFile]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`first: bad-hash at event ${record.eventID} (edge ${edge}, sequence 5)`);
  });

  it("fails on the stream once an event is altered, naming it", async () => {
    // Event 9, properly chained onto event 8, then altered in transit.
    const altered = clone(AuditEventSchema, events[7] as AuditEvent);
    altered.eventId = randomUUID();
    chainEvent(altered, 9n, events[7]?.tollgate?.hash ?? "");
    altered.eventName = "DeleteBucket";
    await publish(altered);
    const res = await cli(["audit", "verify"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`first: bad-hash at event ${altered.eventId} (edge ${edge}, sequence 9)`);

    // The control plane raised the same alert on ingest.
    const deadline = Date.now() + 15_000;
    let alerts: Array<{ kind: string; eventID: string; sequence: string; edge: string }> = [];
    while (Date.now() < deadline) {
      const listed = await cli(["audit", "alerts", "--edge", edge, "--json"]);
      expect(listed.code).toBe(0);
      alerts = listed.stdout
        .trim()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l));
      if (alerts.length > 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(alerts).toEqual([
      expect.objectContaining({ kind: "bad-hash", eventID: altered.eventId, sequence: "9", edge }),
    ]);
  });
});
