import { create, fromBinary, type JsonObject, type JsonValue, toBinary, toJsonString } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import { auditEventToBinary, auditEventToJsonString } from "./audit-codec.js";

/** Small deterministic PRNG (mulberry32), so a failure names a reproducible seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ["a", "Z", "0", " ", '"', "\\", "\n", "é", "日", "😀", "\u0000", "/", "<", "&"];

function randomEvent(seed: number): AuditEvent {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const maybe = (p = 0.5): boolean => r() < p;
  const s = (): string =>
    maybe(0.25) ? "" : Array.from({ length: 1 + Math.floor(r() * 12) }, () => pick(ALPHABET)).join("");
  const num = (): number =>
    pick([0, -0, 1, -1, 0.5, 1e21, -123.456, 2 ** 53, Number.MIN_VALUE, Math.floor(r() * 1e6) / 7]);
  const big = (): bigint => pick([0n, 1n, 255n, 2n ** 40n, 2n ** 63n - 1n, BigInt(Math.floor(r() * 1e9))]);
  const json = (depth: number): JsonValue => {
    const k = Math.floor(r() * (depth > 2 ? 4 : 6));
    if (k === 0) return null;
    if (k === 1) return num();
    if (k === 2) return s();
    if (k === 3) return maybe();
    if (k === 4) return Array.from({ length: Math.floor(r() * 4) }, () => json(depth + 1));
    return obj(depth + 1);
  };
  const obj = (depth: number): JsonObject => {
    const o: JsonObject = {};
    const n = Math.floor(r() * 5);
    for (let i = 0; i < n; i++) o[maybe(0.2) ? String(Math.floor(r() * 10)) : s() || "k"] = json(depth);
    return o;
  };
  const digest = () =>
    create(AuditEventSchema.field.tollgate.message.field.requestPayload.message, { size: big(), sha256: s() });
  return create(AuditEventSchema, {
    eventVersion: s(),
    eventId: s(),
    eventTime: s(),
    eventSource: s(),
    eventName: s(),
    awsRegion: s(),
    sourceIpAddress: s(),
    userAgent: s(),
    ...(maybe() ? { userIdentity: { type: s(), principalId: s(), accessKeyId: s() } } : {}),
    ...(maybe() ? { requestParameters: obj(0) } : {}),
    ...(maybe() ? { responseElements: obj(0) } : {}),
    ...(maybe() ? { errorCode: s() } : {}),
    ...(maybe() ? { errorMessage: s() } : {}),
    requestId: s(),
    readOnly: maybe(),
    resources: Array.from({ length: Math.floor(r() * 3) }, () => ({ arn: s(), type: s() })),
    eventType: s(),
    recipientAccountId: s(),
    ...(maybe(0.8)
      ? {
          tollgate: {
            connection: s(),
            edge: s(),
            decision: pick([Decision.UNSPECIFIED, Decision.ALLOW, Decision.DENY, 7]),
            reason: s(),
            durationMs: num(),
            httpStatus: pick([0, 200, 503, -1]),
            bytesIn: big(),
            bytesOut: big(),
            signingName: s(),
            credentialId: s(),
            traceId: s(),
            authMethod: s(),
            sequence: big(),
            prevHash: s(),
            hash: s(),
            requestParametersTruncated: maybe(),
            responseElementsTruncated: maybe(),
            ...(maybe() ? { requestPayload: digest() } : {}),
            ...(maybe() ? { responsePayload: digest() } : {}),
            outcome: s(),
            spanId: s(),
            ...(maybe()
              ? {
                  upstreamIdentity: {
                    source: s(),
                    accessKeyId: s(),
                    roleArn: s(),
                    assumedRoleArn: s(),
                    sessionName: s(),
                    sourceIdentity: s(),
                  },
                }
              : {}),
          },
        }
      : {}),
    eventCategory: s(),
    managementEvent: maybe(),
    ...(maybe() ? { tlsDetails: { tlsVersion: s(), cipherSuite: s(), clientProvidedHostHeader: s() } } : {}),
  });
}

describe("audit-codec", () => {
  it("writes exactly protobuf-es's binary and JSON for 5,000 generated events", () => {
    for (let seed = 1; seed <= 5000; seed++) {
      const e = randomEvent(seed);
      const bin = auditEventToBinary(e);
      const expected = toBinary(AuditEventSchema, e);
      if (Buffer.compare(Buffer.from(bin), Buffer.from(expected)) !== 0) {
        throw new Error(`binary differs for seed ${seed}`);
      }
      const json = auditEventToJsonString(e);
      if (json !== toJsonString(AuditEventSchema, e, { alwaysEmitImplicit: true })) {
        throw new Error(`JSON differs for seed ${seed}:\n${json}`);
      }
    }
  });

  it("handles long strings and nested messages over 127 and 16,383 bytes (length prefixes of 2 and 3 bytes)", () => {
    for (const n of [42, 43, 100, 127, 128, 5000, 16_383, 16_384, 70_000, 2_200_000]) {
      const e = randomEvent(n);
      e.userAgent = "é".repeat(n % 300);
      e.responseElements = { blob: "x".repeat(n), list: ["日".repeat(n % 1000), { deep: "😀".repeat(50) }] };
      expect(Buffer.from(auditEventToBinary(e)).equals(Buffer.from(toBinary(AuditEventSchema, e))), `size ${n}`).toBe(
        true,
      );
      expect(auditEventToJsonString(e)).toBe(toJsonString(AuditEventSchema, e, { alwaysEmitImplicit: true }));
    }
  });

  it("the generator reaches every field (so the equality above covers them)", () => {
    const seen = { struct: 0, nestedList: 0, digest: 0, upstream: 0, negZero: 0, unknownEnum: 0 };
    for (let seed = 1; seed <= 5000; seed++) {
      const e = randomEvent(seed);
      if (e.requestParameters !== undefined && Object.keys(e.requestParameters).length > 0) seen.struct++;
      if (JSON.stringify(e.responseElements ?? {}).includes("[[")) seen.nestedList++;
      if (e.tollgate?.requestPayload !== undefined) seen.digest++;
      if (e.tollgate?.upstreamIdentity !== undefined) seen.upstream++;
      if (Object.is(e.tollgate?.durationMs, -0)) seen.negZero++;
      if (e.tollgate?.decision === 7) seen.unknownEnum++;
    }
    for (const [k, n] of Object.entries(seen)) expect(n, k).toBeGreaterThan(10);
  });

  it("falls back to protobuf-es for what it does not write itself (unknown fields, non-JSON Struct values)", () => {
    const e = randomEvent(42);
    const withUnknown = fromBinary(
      AuditEventSchema,
      new Uint8Array([...toBinary(AuditEventSchema, e), 0xf8, 0x06, 0x01]),
    );
    expect(withUnknown.$unknown?.length).toBe(1);
    expect(Buffer.from(auditEventToBinary(withUnknown))).toEqual(Buffer.from(toBinary(AuditEventSchema, withUnknown)));
    const odd = create(AuditEventSchema, { eventId: "x", responseElements: { n: Number.NaN } as JsonObject });
    expect(() => toBinary(AuditEventSchema, odd)).not.toThrow();
    expect(Buffer.from(auditEventToBinary(odd))).toEqual(Buffer.from(toBinary(AuditEventSchema, odd)));
  });
});
