import { clone, create, toBinary } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventFromJson, auditEventToJson, chainEvent, computeEventHash } from "@tollgate/sdk";
import { describe, expect, it } from "vitest";
import { chainEncodedEvent, decodeFinalPayload, encodeAuditEvent, encodeFinalPayload } from "./audit-wire.js";

/** Events of many shapes: empty and full tollgate contexts, payload digests, errors, TLS, big numbers, Unicode. */
function events(): AuditEvent[] {
  const base = {
    eventVersion: "1.11",
    eventTime: "2026-11-27T10:00:00.000Z",
    eventSource: "s3.amazonaws.com",
    eventName: "PutObject",
    awsRegion: "eu-west-1",
    sourceIPAddress: "127.0.0.1",
    userAgent: "aws-cli/2 ünïcödé",
    userIdentity: { type: "TollgatePrincipal", principalId: "ci-bot", accessKeyId: "TGIA" },
    eventType: "AwsApiCall",
  };
  const out: AuditEvent[] = [
    // Only the fields below 13 in the tollgate context: the chain fields go at its end.
    create(AuditEventSchema, { ...base, eventId: "e-1", tollgate: { connection: "prod", edge: "edge-1" } }),
    // An empty tollgate context (field 19 present with length 0 is not written: see below).
    create(AuditEventSchema, { ...base, eventId: "e-2", tollgate: { outcome: "completed" } }),
    create(AuditEventSchema, {
      ...base,
      eventId: "e-3",
      requestParameters: {
        bucketName: "b",
        key: "k",
        tollgate: { sequence: "0", prevHash: "", hash: "" },
        nested: { sequence: "0", list: [1, "two", null, true] },
      },
      responseElements: { "x-amz-version-id": "v1", sequence: "0", prevHash: "", hash: "" },
      errorCode: "AccessDenied",
      errorMessage: 'quote " and \\ and "sequence":"0","prevHash":"","hash":""',
      requestId: "RID",
      readOnly: false,
      resources: [
        { arn: "arn:aws:s3:::b", type: "AWS::S3::Bucket" },
        { arn: "arn:aws:s3:::b/k", type: "AWS::S3::Object" },
      ],
      recipientAccountId: "123456789012",
      eventCategory: "Data",
      managementEvent: false,
      tlsDetails: { tlsVersion: "TLSv1.3", cipherSuite: "TLS_AES_128_GCM_SHA256", clientProvidedHostHeader: "h" },
      tollgate: {
        connection: "prod",
        edge: "edge-1",
        decision: Decision.ALLOW,
        reason: "allowed",
        durationMs: 12.5,
        httpStatus: 200,
        bytesIn: 9_007_199_254_740_993n,
        bytesOut: -1n,
        signingName: "s3",
        credentialId: "cred",
        traceId: "0af7651916cd43dd8448eb211c80319c",
        authMethod: "sigv4-header",
        requestParametersTruncated: true,
        responseElementsTruncated: true,
        requestPayload: { size: 1024n * 1024n * 1024n, sha256: "ab".repeat(32) },
        responsePayload: { size: 0n, sha256: "" },
        outcome: "completed",
      },
    }),
  ];
  // A tollgate context whose only fields are above 15.
  out.push(create(AuditEventSchema, { ...base, eventId: "e-4", tollgate: { outcome: "unknown" } }));
  return out;
}

describe("chainEncodedEvent", () => {
  it("gives the bytes, hash and JSON of chainEvent + toBinary + auditEventToJson, for every shape and chain position", () => {
    let prev = "";
    let sequence = 0n;
    for (let round = 0; round < 3; round++) {
      for (const e of events()) {
        // Sequences of several varint lengths.
        sequence += round === 2 ? 300_000n : 1n;
        const encoded = encodeAuditEvent("tg", e);
        const spliced = chainEncodedEvent(encoded, sequence, prev);
        const expected = clone(AuditEventSchema, e);
        const hash = chainEvent(expected, sequence, prev);
        expect(spliced).toBeDefined();
        expect(spliced?.hash).toBe(hash);
        expect(spliced?.json).toBe(auditEventToJson(expected));
        // What the control plane does with the published JSON.
        const received = auditEventFromJson(spliced?.json ?? "");
        expect(computeEventHash(received)).toBe(hash);
        expect(toBinary(AuditEventSchema, received)).toEqual(toBinary(AuditEventSchema, expected));
        expect(received.tollgate?.prevHash).toBe(prev);
        prev = hash;
      }
    }
  });

  it("declines an event without a tollgate context or already chained", () => {
    const [e] = events() as [AuditEvent];
    const bare = clone(AuditEventSchema, e);
    bare.tollgate = undefined;
    expect(chainEncodedEvent(encodeAuditEvent("tg", bare), 1n, "")).toBeUndefined();
    const chained = clone(AuditEventSchema, e);
    chainEvent(chained, 7n, "");
    if (chained.tollgate !== undefined) chained.tollgate.hash = "";
    expect(chainEncodedEvent(encodeAuditEvent("tg", chained), 8n, "x")).toBeUndefined();
  });

  it("round-trips the journal payload", () => {
    const e = events()[2] as AuditEvent;
    const encoded = encodeAuditEvent("tg.prefix", e);
    const back = decodeFinalPayload(encodeFinalPayload(encoded));
    expect(back.eventId).toBe("e-3");
    expect(back.subjectPrefix).toBe("tg.prefix");
    expect(back.subject).toBe(encoded.subject);
    expect(Buffer.from(back.binary)).toEqual(Buffer.from(encoded.binary));
    expect(back.json).toBe(encoded.json);
  });
});
