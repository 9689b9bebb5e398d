import { create } from "@bufbuild/protobuf";
import { AuditEventSchema, Decision } from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import {
  ChainVerifier,
  chainEvent,
  computeEventHash,
  generateEdgeSigningKey,
  signCheckpoint,
  verifyCheckpoint,
} from "./audit-chain.js";
import { auditEventFromJson, auditEventToJson } from "./audit-json.js";

function event(i: number) {
  return create(AuditEventSchema, {
    eventId: `e-${i}`,
    eventTime: new Date(1_800_000_000_000 + i).toISOString(),
    eventName: "PutObject",
    requestParameters: { bucketName: "b", key: `k${i}`, "2": "x", nested: { a: [1, 2.5, "z"] } },
    tollgate: { edge: "edge-a", decision: Decision.ALLOW, durationMs: 1.25 },
  });
}

function chain(n: number) {
  const out = [];
  let prev = "";
  for (let i = 1; i <= n; i++) {
    const e = event(i);
    prev = chainEvent(e, BigInt(i), prev);
    out.push(e);
  }
  return out;
}

const key = generateEdgeSigningKey();
const verifier = () =>
  new ChainVerifier((edge, keyId) => (edge === "edge-a" && keyId === key.keyId ? key.publicKeyPem : undefined));

describe("audit chain", () => {
  it("hashes survive the JSON round trip on the stream", () => {
    for (const e of chain(3)) {
      const back = auditEventFromJson(auditEventToJson(e));
      expect(computeEventHash(back)).toBe(e.tollgate?.hash);
    }
  });

  it("accepts an intact chain and a matching signed checkpoint", () => {
    const v = verifier();
    const events = chain(5);
    for (const e of events) expect(v.addEvent(auditEventFromJson(auditEventToJson(e)))).toEqual([]);
    const cp = signCheckpoint(key, { edge: "edge-a", sequence: 5n, hash: events[4]?.tollgate?.hash ?? "" });
    expect(verifyCheckpoint(cp, key.publicKeyPem)).toBe(true);
    expect(v.addCheckpoint(cp)).toEqual([]);
  });

  it("detects an altered event", () => {
    const v = verifier();
    const events = chain(3);
    const altered = auditEventFromJson(auditEventToJson(events[1] as never));
    altered.requestParameters = { bucketName: "b", key: "other" };
    expect(v.addEvent(events[0] as never)).toEqual([]);
    expect(v.addEvent(altered).map((p) => p.kind)).toContain("bad-hash");
  });

  it("detects a dropped event (gap) and reordering", () => {
    const events = chain(4);
    const v = verifier();
    v.addEvent(events[0] as never);
    const gap = v.addEvent(events[2] as never);
    expect(gap.map((p) => [p.kind, p.sequence])).toEqual([["gap", 3n]]);
    expect(v.addEvent(events[1] as never).map((p) => p.kind)).toEqual(["reordered"]);
  });

  it("detects a forged event inserted with a recomputed hash (fork)", () => {
    const events = chain(2);
    const v = verifier();
    v.addEvent(events[0] as never);
    const forged = event(99);
    chainEvent(forged, 2n, "not-the-previous-hash");
    expect(v.addEvent(forged).map((p) => p.kind)).toEqual(["fork"]);
  });

  it("rejects a checkpoint with a bad signature or one that disagrees with the chain", () => {
    const events = chain(2);
    const v = verifier();
    for (const e of events) v.addEvent(e);
    const cp = signCheckpoint(key, { edge: "edge-a", sequence: 2n, hash: "f".repeat(64) });
    expect(v.addCheckpoint(cp).map((p) => p.kind)).toEqual(["checkpoint-mismatch"]);
    const good = signCheckpoint(key, { edge: "edge-a", sequence: 2n, hash: events[1]?.tollgate?.hash ?? "" });
    expect(v.addCheckpoint({ ...good, sequence: 1n }).map((p) => p.kind)).toEqual(["bad-checkpoint"]);
    const other = generateEdgeSigningKey();
    expect(verifyCheckpoint(good, other.publicKeyPem)).toBe(false);
  });
});
