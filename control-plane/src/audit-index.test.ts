import { create } from "@bufbuild/protobuf";
import { AuditEventSchema } from "@tollgate/proto";
import { auditEventToJson } from "@tollgate/sdk";
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
});
