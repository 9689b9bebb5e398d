// Audit index query benchmark: 1 M events for ~1 000 principals over 7 days in a temp SQLite
// index, then "one principal's last 24 h, newest first, first page of 100 and the full count",
// the query `tollgate audit query --principal P --since 24h` runs. Target: < 1 s.
// Usage: npm run build && node bench/audit-query.bench.mjs [events] [principals]
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { AuditIndex, indexableEvent } from "@tollgate/control-plane";
import { AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventToJson } from "@tollgate/sdk";

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const PRINCIPALS = Number(process.argv[3] ?? 1_000);
const SPAN_MS = 7 * 24 * 3600_000;
const OPS = ["GetObject", "PutObject", "ListObjectsV2", "GetItem", "PutItem", "GetCallerIdentity", "SendMessage"];

const dir = mkdtempSync(join(tmpdir(), "tollgate-bench-index-"));
const path = join(dir, "audit-index.sqlite");
const index = new AuditIndex(path);
const now = Date.now();

// A realistic record (about 900 bytes of JSON), varied per event.
function row(i) {
  const principal = `agent-${i % PRINCIPALS}`;
  const op = OPS[i % OPS.length];
  const deny = i % 50 === 0;
  const ev = create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
    // Oldest first, as ingest sees them.
    eventTime: new Date(now - SPAN_MS + Math.floor((i / EVENTS) * SPAN_MS)).toISOString(),
    eventSource: "s3.amazonaws.com",
    eventName: op,
    awsRegion: "us-east-1",
    sourceIPAddress: "10.0.0.7",
    userAgent: "aws-sdk-js/3.700.0 ua/2.1 os/linux lang/js md/nodejs#20",
    userIdentity: { type: "TollgatePrincipal", principalId: principal, accessKeyId: "TGIAEXAMPLE" },
    resources: [{ arn: `arn:aws:s3:::bucket-${i % 97}/key-${i}`, type: "AWS::S3::Object" }],
    eventType: "AwsApiCall",
    ...(deny ? { errorCode: "AccessDenied", errorMessage: "denied by policy" } : {}),
    tollgate: {
      connection: `conn-${i % 5}`,
      edge: "edge-1",
      decision: deny ? Decision.DENY : Decision.ALLOW,
      reason: "allowed",
      signingName: "s3",
      sequence: BigInt(i + 1),
      hash: "ab".repeat(32),
      prevHash: "cd".repeat(32),
    },
  });
  return indexableEvent(ev, i + 1, auditEventToJson(ev));
}

const t0 = performance.now();
const BATCH = 10_000;
for (let start = 0; start < EVENTS; start += BATCH) {
  const rows = [];
  for (let i = start; i < Math.min(start + BATCH, EVENTS); i++) rows.push(row(i));
  index.insertMany(rows);
}
const insertMs = performance.now() - t0;
const sizeMb = statSync(path).size / 1e6;

function query(principal) {
  const q = { principal, sinceMs: now - 24 * 3600_000 };
  const s = performance.now();
  const page = index.query({ ...q, limit: 100 });
  const total = index.count(q);
  return { ms: performance.now() - s, page: page.length, total };
}

const first = query(`agent-${Math.floor(PRINCIPALS * 0.421)}`); // first query after the load
const runs = [];
for (let k = 0; k < 20; k++) runs.push(query(`agent-${(k * 37) % PRINCIPALS}`));
runs.sort((a, b) => a.ms - b.ms);
const median = runs[Math.floor(runs.length / 2)];
const worst = runs[runs.length - 1];
const arn = performance.now();
const probe = EVENTS - 100;
const byArn = index.query({ resourceArn: `arn:aws:s3:::bucket-${probe % 97}/key-${probe}`, limit: 100 }).length;
const arnMs = performance.now() - arn;

console.log(
  `events ${EVENTS}, principals ${PRINCIPALS}, index ${sizeMb.toFixed(0)} MB, load ${(insertMs / 1000).toFixed(1)} s`,
);
console.log(
  `principal last 24h (page 100 + count): first ${first.ms.toFixed(1)} ms (${first.page} rows, total ${first.total}), median ${median.ms.toFixed(1)} ms, worst ${worst.ms.toFixed(1)} ms of 20`,
);
console.log(`resource ARN lookup: ${arnMs.toFixed(1)} ms (${byArn} rows)`);
console.log(`target < 1000 ms: ${worst.ms < 1000 && first.ms < 1000 ? "met" : "MISSED"}`);
index.close();
rmSync(dir, { recursive: true, force: true });
