#!/usr/bin/env node
// Audit journal + shipper benchmark (issue #4). Needs a build (`npx tsc -b`) and a nats-server
// with JetStream (TOLLGATE_NATS_URL, default nats://127.0.0.1:4222). Prints:
//   appends/s with fsync (1 and 64 concurrent writers), ship rate events/s,
//   append → visible to a JetStream consumer p50/p99 at a steady offered load.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { AuditEventSchema } from "@tollgate/proto";
import { generateEdgeSigningKey } from "@tollgate/sdk";
import { AuditJournal, JournalRecordType } from "../dist/audit-journal.js";
import { AuditRecorder } from "../dist/audit-recorder.js";
import { encodeAuditEvent, encodeFinalPayload } from "../dist/audit-wire.js";

const url = process.env.TOLLGATE_NATS_URL ?? "nats://127.0.0.1:4222";
const seconds = Number(process.env.BENCH_SECONDS ?? "3");
const tmp = fs.mkdtempSync(join(tmpdir(), "tollgate-bench-"));
const pct = (xs, p) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const ev = () =>
  create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: randomUUID(),
    eventTime: new Date().toISOString(),
    eventSource: "s3.amazonaws.com",
    eventName: "GetObject",
    awsRegion: "us-east-1",
    requestParameters: {
      bucketName: "bench-bucket",
      key: "some/object/key.txt",
      Host: "bench-bucket.s3.amazonaws.com",
    },
    tollgate: {
      connection: "bench",
      edge: "bench-edge",
      decision: 1,
      reason: "allowed",
      signingName: "s3",
      httpStatus: 200,
    },
  });

async function appendRate(concurrency) {
  const j = await AuditJournal.open({ dir: join(tmp, `a${concurrency}`) });
  const payload = encodeFinalPayload(encodeAuditEvent("bench", ev()));
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const syncs0 = j.stats.fsyncs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await j.append(JournalRecordType.Completion, payload);
        n++;
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const r = { concurrency, appendsPerSec: Math.round(n / s), fsyncsPerSec: Math.round((j.stats.fsyncs - syncs0) / s) };
  await j.close();
  return r;
}

const prefix = `bench${randomUUID().slice(0, 8)}`;
const stream = `BENCH_${prefix}`;
const nc = await connect({ servers: url });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({
  name: stream,
  subjects: [`${prefix}.audit.>`, `${prefix}.checkpoint.>`],
  duplicate_window: 120e9,
});

async function shipRate(n) {
  const dir = join(tmp, "ship");
  const j = await AuditJournal.open({ dir });
  await Promise.all(
    Array.from({ length: n }, () =>
      j.append(JournalRecordType.Final, encodeFinalPayload(encodeAuditEvent(prefix, ev()))),
    ),
  );
  await j.close();
  const rec = await AuditRecorder.open({
    dir,
    connect: () => connect({ servers: url, reconnect: false }),
    edge: "bench-edge",
    signingKey: generateEdgeSigningKey(),
    subjectPrefix: () => prefix,
  });
  const t0 = performance.now();
  while (!rec.shipper.idle) await new Promise((r) => setTimeout(r, 5));
  const s = (performance.now() - t0) / 1000;
  await rec.close(0);
  return { events: n, eventsPerSec: Math.round(n / s) };
}

async function latency(ratePerSec) {
  const rec = await AuditRecorder.open({
    dir: join(tmp, `lat${ratePerSec}`),
    connect: () => connect({ servers: url, reconnect: false }),
    edge: "bench-edge",
    signingKey: generateEdgeSigningKey(),
    subjectPrefix: () => prefix,
  });
  const sent = new Map();
  const lat = [];
  const consumer = await jetstream(nc).consumers.get(stream, {
    deliver_policy: "new",
    filter_subjects: `${prefix}.audit.>`,
  });
  const messages = await consumer.consume();
  const reading = (async () => {
    for await (const m of messages) {
      const t = sent.get(m.headers?.get("Nats-Msg-Id"));
      if (t !== undefined) lat.push(performance.now() - t);
    }
  })();
  const total = ratePerSec * seconds;
  const t0 = performance.now();
  const calls = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / ratePerSec;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const e = ev();
    sent.set(e.eventId, performance.now());
    calls.push(rec.begin(e).then((h) => rec.complete(h, e)));
  }
  await Promise.all(calls);
  const deadline = performance.now() + 10_000;
  while (lat.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  messages.stop();
  await reading;
  await rec.close(0);
  return {
    offeredPerSec: ratePerSec,
    seen: lat.length,
    p50Ms: +pct(lat, 50).toFixed(2),
    p99Ms: +pct(lat, 99).toFixed(2),
  };
}

const results = {
  append1: await appendRate(1),
  append64: await appendRate(64),
  ship: await shipRate(20_000),
  latency500: await latency(500),
  latency2000: await latency(2000),
};
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
await jsm.streams.delete(stream);
await nc.close();
fs.rmSync(tmp, { recursive: true, force: true });
