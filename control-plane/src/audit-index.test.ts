import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventToJson } from "@tollgate/sdk";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditIndex, indexableEvent } from "./audit-index.js";

function row(seq: number, timeMs: number, over: { principal?: string; service?: string; eventSource?: string } = {}) {
  const ev = create(AuditEventSchema, {
    eventId: `ev-${seq}`,
    eventTime: new Date(timeMs).toISOString(),
    eventSource: over.eventSource ?? `${over.service ?? "s3"}.amazonaws.com`,
    eventName: "PutObject",
    userIdentity: { principalId: over.principal ?? "alice" },
    tollgate: { connection: "default", signingName: over.service ?? "s3" },
  });
  return indexableEvent(ev, seq, auditEventToJson(ev));
}

describe("AuditIndex", () => {
  let index: AuditIndex;
  beforeEach(() => {
    index = new AuditIndex(":memory:");
  });
  afterEach(() => index.close());

  it("ignores a repeated event id", () => {
    expect(index.insert(row(1, 1000))).toBe(true);
    expect(index.insert({ ...row(1, 1000), streamSeq: 7 })).toBe(false);
    expect(index.count()).toBe(1);
  });

  it("orders newest first with the stream sequence breaking ties, and pages by cursor", () => {
    index.insert(row(1, 1000));
    index.insert(row(2, 3000));
    index.insert(row(3, 2000));
    index.insert(row(4, 2000));
    const all = index.query({ limit: 10 });
    expect(all.map((r) => r.streamSeq)).toEqual([2, 4, 3, 1]);
    const page2 = index.query({ limit: 2, after: all[1] });
    expect(page2.map((r) => r.streamSeq)).toEqual([3, 1]);
  });

  it("matches service on signing name or event source prefix, literally", () => {
    index.insert(row(1, 1000, { service: "s3" }));
    index.insert(row(2, 1000, { service: "", eventSource: "sts.amazonaws.com" }));
    index.insert(row(3, 1000, { service: "x", eventSource: "s3x.amazonaws.com" }));
    expect(index.query({ limit: 10, service: "s3" }).map((r) => r.streamSeq)).toEqual([1]);
    expect(index.query({ limit: 10, service: "sts" }).map((r) => r.streamSeq)).toEqual([2]);
    expect(index.query({ limit: 10, service: "s_" })).toEqual([]);
  });

  it("rejects events without an id or a parseable time", () => {
    const ev = create(AuditEventSchema, { eventId: "", eventTime: "2030-01-01T00:00:00Z" });
    expect(() => indexableEvent(ev, 1, "{}")).toThrow(/eventID/);
    const ev2 = create(AuditEventSchema, { eventId: "x", eventTime: "yesterday" });
    expect(() => indexableEvent(ev2, 1, "{}")).toThrow(/eventTime/);
  });

  it("filters by resource ARN, decision and error code, and counts matches", () => {
    const ev = (n: number, arn: string, decision: Decision, errorCode?: string) => {
      const e = create(AuditEventSchema, {
        eventId: `ev-${n}`,
        eventTime: new Date(1000 * n).toISOString(),
        eventSource: "s3.amazonaws.com",
        eventName: "GetObject",
        userIdentity: { principalId: "alice" },
        resources: [
          { arn, type: "AWS::S3::Object" },
          { arn: "arn:aws:s3:::shared", type: "AWS::S3::Bucket" },
        ],
        ...(errorCode === undefined ? {} : { errorCode }),
        tollgate: { connection: "default", signingName: "s3", decision },
      });
      return indexableEvent(e, n, auditEventToJson(e));
    };
    expect(
      index.insertMany([
        ev(1, "arn:aws:s3:::b/one", Decision.ALLOW),
        ev(2, "arn:aws:s3:::b/two", Decision.DENY, "AccessDenied"),
        ev(3, "arn:aws:s3:::b/one", Decision.ALLOW, "NoSuchKey"),
      ]),
    ).toBe(3);
    const seqs = (q: Parameters<AuditIndex["query"]>[0]) => index.query(q).map((r) => r.streamSeq);
    expect(seqs({ limit: 10, resourceArn: "arn:aws:s3:::b/one" })).toEqual([3, 1]);
    expect(seqs({ limit: 10, resourceArn: "arn:aws:s3:::shared" })).toEqual([3, 2, 1]);
    expect(seqs({ limit: 10, resourceArn: "arn:aws:s3:::b/" })).toEqual([]);
    expect(seqs({ limit: 10, decision: Decision.DENY })).toEqual([2]);
    expect(seqs({ limit: 10, errorCode: "NoSuchKey" })).toEqual([3]);
    expect(index.count({ decision: Decision.ALLOW })).toBe(2);
    expect(index.count({ resourceArn: "arn:aws:s3:::shared", sinceMs: 2000 })).toBe(2);
  });
});

describe("AuditIndex schema", () => {
  it("rebuilds an index written by an older schema and asks for a replay", () => {
    const dir = mkdtempSync(join(tmpdir(), "tollgate-index-"));
    try {
      const path = join(dir, "index.sqlite");
      const old = new Database(path);
      old.exec("CREATE TABLE audit_events (event_id TEXT); INSERT INTO audit_events VALUES ('x')");
      old.pragma("user_version = 1");
      old.close();
      const index = new AuditIndex(path);
      expect(index.created).toBe(true);
      expect(index.count()).toBe(0);
      index.close();
      const again = new AuditIndex(path);
      expect(again.created).toBe(false);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
