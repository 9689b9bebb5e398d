// Audit ingest benchmark: the control plane's CPU per ingested audit event.
//
// Publishes N chained audit events from two edges (as the edge agent does: CloudTrail JSON,
// `Nats-Msg-Id` and `traceparent` headers, a signed checkpoint every 1000 events per edge) into a
// stream of its own on 127.0.0.1:4222, then runs the control plane's ingest (AuditIndex +
// AuditIntegrity + AuditIngest, wired as control-plane.ts does) in a child process until every
// event is indexed, and prints the child's CPU time per event (process.cpuUsage, from just before
// AuditIngest.start() until the last event is indexed) and events/s. The child then checks that
// all N events are in the index, with no integrity alert and no unchained event.
//
// Modes: backlog (default: everything is published first, the ingest catches up, as after a
// restart or on replay) and `--rate R` (the ingest runs while events arrive at R events/s, as
// during `npm run bench`, where the edge publishes ~1100/s).
//
// Usage: npm run build && node bench/audit-ingest.bench.mjs [--events 20000] [--rate 0] [--profile]
//   [--window-ms N] (AuditIngestOptions.batchWindowMs; default: the ingest's own)
// `--profile` runs the ingest child with `node --cpu-prof` and keeps the profile in
// bench/results/. `BENCH_REPO=/path/to/checkout` runs the ingest of another build (a baseline:
// e.g. a `git archive` of main, built, with `node_modules` linked in); events are published by
// this one. Needs NATS (JetStream) on 127.0.0.1:4222 and Redis on 127.0.0.1:6379; deletes its
// stream, Redis keys and temp files at the end.
import { fork } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { create, toJsonString } from "@bufbuild/protobuf";
import { EdgeKeyRegistry, ensureAuditStream, silentLogger } from "@tollgate/control-plane";
import { AuditEventSchema, CheckpointSchema, Decision } from "@tollgate/proto";
import {
  auditCheckpointSubject,
  auditEventToJson,
  auditSubject,
  chainEvent,
  generateEdgeSigningKey,
  randomSpanId,
  randomTraceId,
  signCheckpoint,
  TRACEPARENT_HEADER,
} from "@tollgate/sdk";
import { Redis } from "ioredis";

// nats.js is a dependency of the workspaces, not of the root.
const fromControlPlane = (pkg) =>
  pathToFileURL(createRequire(new URL("../control-plane/package.json", import.meta.url)).resolve(pkg)).href;
const { jetstream, jetstreamManager } = await import(fromControlPlane("@nats-io/jetstream"));
const { connect, headers } = await import(fromControlPlane("@nats-io/transport-node"));

/** Checkout whose control plane the ingest child runs (another build, for a baseline); default this one. */
const REPO = process.env.BENCH_REPO ?? fileURLToPath(new URL("..", import.meta.url));
const NATS_URL = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const EDGES = ["edge-a", "edge-b"];
const CHECKPOINT_EVERY = 1000;
const OPS = [
  ["s3", "s3.amazonaws.com", "GetObject"],
  ["s3", "s3.amazonaws.com", "PutObject"],
  ["dynamodb", "dynamodb.amazonaws.com", "GetItem"],
  ["sts", "sts.amazonaws.com", "GetCallerIdentity"],
];

if (process.argv[2] === "--child") await child(JSON.parse(process.argv[3]));
else await parent();

async function parent() {
  const { values } = parseArgs({
    options: {
      events: { type: "string", default: "20000" },
      rate: { type: "string", default: "0" },
      profile: { type: "boolean", default: false },
      "window-ms": { type: "string" },
    },
  });
  const events = Number(values.events);
  const rate = Number(values.rate);
  const id = randomBytes(4).toString("hex");
  const cfg = {
    id,
    events,
    stream: `TGBENCH_INGEST_${id.toUpperCase()}`,
    subjectPrefix: `tgbench_ingest_${id}`,
    redisPrefix: `tgbench-ingest:${id}:`,
    dir: mkdtempSync(join(tmpdir(), "tollgate-bench-ingest-")),
    windowMs: values["window-ms"] === undefined ? undefined : Number(values["window-ms"]),
  };
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const redis = new Redis(REDIS_URL);
  let ingest;
  try {
    await ensureAuditStream(
      jsm,
      { stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, maxAgeMs: 0, duplicateWindowMs: 120_000 },
      silentLogger,
    );
    const keys = new EdgeKeyRegistry(redis, cfg.redisPrefix);
    const edges = [];
    for (const name of EDGES) {
      const key = generateEdgeSigningKey();
      await keys.register(name, key.publicKeyPem);
      edges.push({ name, key, sequence: 0n, hash: "" });
    }
    const publish = publisher(js, cfg, edges);
    if (rate > 0) {
      ingest = startChild(cfg, values.profile);
      await ingest.ready;
      // Bursts every 10 ms, as the edge's shipper writes its window at once.
      const perTick = Math.max(1, Math.round(rate / 100));
      const t0 = performance.now();
      for (let sent = 0; sent < events; ) {
        const n = Math.min(perTick, events - sent);
        await publish(sent, n);
        sent += n;
        const due = t0 + (sent / rate) * 1000 - performance.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
    } else {
      const t0 = performance.now();
      for (let sent = 0; sent < events; sent += 500) await publish(sent, Math.min(500, events - sent));
      console.log(`published ${events} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      ingest = startChild(cfg, values.profile);
      await ingest.ready;
    }
    const r = await ingest.result;
    const cpuUs = r.cpuUserUs + r.cpuSystemUs;
    console.log(
      `mode ${rate > 0 ? `live ${rate}/s` : "backlog"}, events ${r.indexed} indexed (index count ${r.count}), alerts ${r.alerts}, unchained ${r.unchained}`,
    );
    console.log(
      `ingest CPU ${(cpuUs / r.indexed).toFixed(1)} µs/event (user ${(r.cpuUserUs / r.indexed).toFixed(1)}, system ${(r.cpuSystemUs / r.indexed).toFixed(1)}), ${Math.round(r.indexed / (r.wallMs / 1000))} events/s wall`,
    );
    if (r.profile !== undefined) console.log(`profile: ${r.profile}`);
    if (r.indexed !== events || r.count !== events || r.alerts !== 0 || r.unchained !== 0) {
      process.exitCode = 1;
      console.log("FAILED: not every event was indexed cleanly");
    }
  } finally {
    ingest?.kill();
    await jsm.streams.delete(cfg.stream).catch(() => false);
    const left = await redis.keys(`${cfg.redisPrefix}*`);
    if (left.length > 0) await redis.del(...left);
    await redis.quit();
    await nc.close();
    rmSync(cfg.dir, { recursive: true, force: true });
  }
}

/** Returns publish(from, n): n more events, round robin over the edges, awaiting their acks. */
function publisher(js, cfg, edges) {
  const now = Date.now();
  return async (from, n) => {
    const acks = [];
    for (let i = from; i < from + n; i++) {
      const edge = edges[i % edges.length];
      const [signingName, eventSource, op] = OPS[i % OPS.length];
      const deny = i % 50 === 0;
      const principal = `agent-${i % 97}`;
      const connection = `conn-${i % 5}`;
      const traceId = randomTraceId();
      const spanId = randomSpanId();
      const ev = create(AuditEventSchema, {
        eventVersion: "1.09",
        eventId: randomUUID(),
        eventTime: new Date(now + i).toISOString(),
        eventSource,
        eventName: op,
        awsRegion: "us-east-1",
        sourceIPAddress: "10.0.0.7",
        userAgent: "aws-sdk-js/3.700.0 ua/2.1 os/linux#6.1 lang/js md/nodejs#20.18.0 api/s3#3.700.0",
        userIdentity: { type: "TollgatePrincipal", principalId: principal, accessKeyId: `TGIA${i % 1000}EXAMPLE` },
        requestParameters: { bucketName: `bucket-${i % 13}`, key: `reports/2026/${i}.json`, Host: "s3.amazonaws.com" },
        requestId: randomBytes(8).toString("hex").toUpperCase(),
        readOnly: op.startsWith("Get"),
        resources: [
          { arn: `arn:aws:s3:::bucket-${i % 13}/reports/2026/${i}.json`, type: "AWS::S3::Object" },
          { arn: `arn:aws:s3:::bucket-${i % 13}`, type: "AWS::S3::Bucket" },
        ],
        eventType: "AwsApiCall",
        recipientAccountId: "000000000000",
        eventCategory: "Data",
        tlsDetails: { tlsVersion: "TLSv1.3", cipherSuite: "TLS_AES_128_GCM_SHA256", clientProvidedHostHeader: "s3" },
        ...(deny ? { errorCode: "AccessDenied", errorMessage: "denied by connection policy" } : {}),
        tollgate: {
          connection,
          edge: edge.name,
          decision: deny ? Decision.DENY : Decision.ALLOW,
          reason: deny ? "operation not allowed" : "allowed by connection policy",
          durationMs: 3.25,
          httpStatus: deny ? 403 : 200,
          bytesIn: 0n,
          bytesOut: 1834n,
          signingName,
          credentialId: `cred-${i % 97}`,
          traceId,
          authMethod: "sigv4",
          requestPayload: { size: 0n, sha256: "" },
          responsePayload: { size: 1834n, sha256: "ab".repeat(32) },
          outcome: deny ? "denied" : "success",
          spanId,
        },
      });
      edge.sequence += 1n;
      edge.hash = chainEvent(ev, edge.sequence, edge.hash);
      const h = headers();
      h.set("Nats-Msg-Id", ev.eventId);
      h.set(TRACEPARENT_HEADER, `00-${traceId}-${spanId}-01`);
      const subject = auditSubject(cfg.subjectPrefix, { connection, principal, service: signingName, operation: op });
      acks.push(js.publish(subject, auditEventToJson(ev), { headers: h }));
      if (edge.sequence % BigInt(CHECKPOINT_EVERY) === 0n) {
        const cp = signCheckpoint(edge.key, { edge: edge.name, sequence: edge.sequence, hash: edge.hash });
        acks.push(
          js.publish(auditCheckpointSubject(cfg.subjectPrefix, edge.name), toJsonString(CheckpointSchema, cp), {
            msgID: `checkpoint-${edge.name}-${cp.sequence}-${cp.time}`,
          }),
        );
      }
    }
    await Promise.all(acks);
  };
}

function startChild(cfg, profile) {
  const profileDir = join(dirname(fileURLToPath(import.meta.url)), "results");
  if (profile) mkdirSync(profileDir, { recursive: true });
  const proc = fork(fileURLToPath(import.meta.url), ["--child", JSON.stringify({ ...cfg, profile })], {
    execArgv: profile
      ? ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", `ingest-${cfg.id}.cpuprofile`]
      : [],
  });
  // `ready` settles when the child is about to start the ingest, `result` once it has exited (so
  // a --cpu-prof profile is written); both reject if it fails or exits early.
  let ready;
  let failed;
  const readyP = new Promise((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  const result = new Promise((resolve, reject) => {
    let outcome;
    const fail = (err) => {
      failed(err);
      reject(err);
    };
    proc.on("message", (m) => {
      if (m.type === "ready") ready();
      else if (m.type === "result")
        outcome = { ...m, profile: profile ? join(profileDir, `ingest-${cfg.id}.cpuprofile`) : undefined };
      else if (m.type === "error") fail(new Error(m.message));
    });
    proc.on("exit", (code) =>
      outcome !== undefined ? resolve(outcome) : fail(new Error(`ingest child exited with ${code}`)),
    );
  });
  // Awaited later (or not at all when publishing fails first): no unhandled rejection meanwhile.
  readyP.catch(() => {});
  result.catch(() => {});
  return { ready: readyP, result, kill: () => proc.exitCode === null && proc.signalCode === null && proc.kill() };
}

async function child(cfg) {
  try {
    const { AuditIndex, AuditIngest, AuditIntegrity, EdgeKeyRegistry, silentLogger } = await import(
      pathToFileURL(join(REPO, "control-plane/dist/index.js")).href
    );
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const redis = new Redis(REDIS_URL);
    const index = new AuditIndex(join(cfg.dir, "audit-index.sqlite"));
    let alertCount = 0;
    const integrity = new AuditIntegrity(index, new EdgeKeyRegistry(redis, cfg.redisPrefix), silentLogger, {
      silenceAlertMs: 0,
      onAlert: () => alertCount++,
    });
    const ingest = new AuditIngest(
      js,
      jsm,
      index,
      {
        stream: cfg.stream,
        consumerName: "audit-index",
        replay: index.created,
        subjectPrefix: cfg.subjectPrefix,
        integrity,
        ...(cfg.windowMs === undefined ? {} : { batchWindowMs: cfg.windowMs }),
      },
      silentLogger,
    );
    process.send({ type: "ready" });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await ingest.start();
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        if (ingest.indexed < cfg.events) return;
        clearInterval(timer);
        resolve();
      }, 20);
    });
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    await ingest.stop();
    const result = {
      type: "result",
      indexed: ingest.indexed,
      count: index.count(),
      alerts: Math.max(alertCount, integrity.alertsRaised),
      unchained: integrity.unchainedEvents,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      wallMs,
    };
    index.close();
    await redis.quit();
    await nc.close();
    process.send(result, () => process.exit(0));
  } catch (err) {
    process.send({ type: "error", message: String(err?.stack ?? err) }, () => process.exit(1));
  }
}
