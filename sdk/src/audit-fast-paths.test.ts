import { createHash } from "node:crypto";
import { create, fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import { chainEvent, computeEventHash } from "./audit-chain.js";
import { auditEventToBinary } from "./audit-codec.js";
import { auditEventFromJson, auditEventToJson } from "./audit-json.js";
import { fastFromJson } from "./fast-from-json.js";

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

const WORDS = ["", "a", "GetObject", "é", "中文", "tab\there", 'quote"d', "back\\slash", "nul\u0000", "x".repeat(200)];

function randomEvent(seed: number): AuditEvent {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const maybe = (p = 0.5) => r() < p;
  const str = () => (maybe(0.8) ? pick(WORDS) : `w${Math.floor(r() * 1e6)}`);
  const json = (depth: number): unknown => {
    const k = r();
    if (depth > 3 || k < 0.3) return pick([0, -1.5, 1e21, 42, 3.25, 7]);
    if (k < 0.5) return str();
    if (k < 0.6) return maybe();
    if (k < 0.7) return null;
    if (k < 0.85) return Array.from({ length: Math.floor(r() * 3) }, () => json(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(r() * 4); i > 0; i--)
      o[pick(["b", "a", "2", "10", "key", "Host", str()])] = json(depth + 1);
    return o;
  };
  const struct = (): Record<string, unknown> => {
    const v = json(0);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { v };
  };
  const e = create(AuditEventSchema, {
    eventVersion: str(),
    eventId: `id-${seed}`,
    eventTime: new Date(1_800_000_000_000 + seed).toISOString(),
    eventSource: str(),
    eventName: str(),
    awsRegion: str(),
    sourceIPAddress: str(),
    userAgent: str(),
    ...(maybe(0.8) ? { userIdentity: { type: str(), principalId: str(), accessKeyId: str() } } : {}),
    ...(maybe(0.7)
      ? { requestParameters: maybe(0.8) ? { bucketName: str(), n: 1, ...(maybe() ? { nested: json(0) } : {}) } : {} }
      : {}),
    ...(maybe(0.3) ? { responseElements: struct() } : {}),
    ...(maybe(0.3) ? { errorCode: str() } : {}),
    ...(maybe(0.2) ? { errorMessage: str() } : {}),
    requestId: str(),
    readOnly: maybe(),
    resources: Array.from({ length: Math.floor(r() * 3) }, () => ({ arn: str(), type: str() })),
    eventType: str(),
    recipientAccountId: str(),
    eventCategory: str(),
    managementEvent: maybe(),
    ...(maybe(0.5) ? { tlsDetails: { tlsVersion: str(), cipherSuite: str(), clientProvidedHostHeader: str() } } : {}),
    ...(maybe(0.9)
      ? {
          tollgate: {
            connection: str(),
            edge: pick(["edge-a", "", "e"]),
            decision: pick([Decision.UNSPECIFIED, Decision.ALLOW, Decision.DENY]),
            reason: str(),
            durationMs: pick([0, -0, 1.25, -3.5, 1e-7, 123456.789]),
            httpStatus: pick([0, 200, 403, -1, 2147483647, -2147483648]),
            bytesIn: pick([0n, 1n, 9007199254740993n, -5n, -(2n ** 63n), 2n ** 63n - 1n]),
            bytesOut: pick([0n, 1834n, 2n ** 40n]),
            signingName: str(),
            credentialId: str(),
            traceId: str(),
            authMethod: str(),
            requestParametersTruncated: maybe(),
            responseElementsTruncated: maybe(),
            ...(maybe() ? { requestPayload: { size: pick([0n, 10n, 2n ** 50n]), sha256: str() } } : {}),
            ...(maybe() ? { responsePayload: { size: 0n, sha256: "" } } : {}),
            outcome: str(),
            spanId: str(),
            ...(maybe(0.3)
              ? {
                  upstreamIdentity: {
                    source: str(),
                    accessKeyId: str(),
                    roleArn: str(),
                    assumedRoleArn: str(),
                    sessionName: str(),
                    sourceIdentity: str(),
                  },
                }
              : {}),
          },
        }
      : {}),
  });
  if (e.tollgate !== undefined && maybe(0.7)) {
    chainEvent(e, pick([1n, 2n, 2n ** 53n + 1n, 2n ** 64n - 1n]), pick(["", "ab".repeat(32)]));
  }
  return e;
}

/** A comparable picture of a value, including key order, -0, bigints and prototypes. */
function shape(v: unknown): unknown {
  if (typeof v === "bigint") return { bigint: v.toString() };
  if (typeof v === "number") return Object.is(v, -0) ? { number: "-0" } : Number.isNaN(v) ? { number: "NaN" } : v;
  if (v === undefined) return { undefined: true };
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return { array: v.map(shape) };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString("hex") };
  return {
    proto: Object.getPrototypeOf(v) === Object.prototype ? "Object" : String(Object.getPrototypeOf(v)),
    entries: Object.keys(v).map((k) => [k, shape((v as Record<string, unknown>)[k])]),
  };
}

function reference(json: string): unknown {
  try {
    return shape(fromJsonString(AuditEventSchema, json, { ignoreUnknownFields: true }));
  } catch {
    return "throws";
  }
}

function actual(json: string): unknown {
  try {
    return shape(auditEventFromJson(json));
  } catch {
    return "throws";
  }
}

describe("auditEventToBinary (audit-codec.ts), on this file's generator too", () => {
  it("writes exactly toBinary's bytes for varied events", () => {
    for (let seed = 1; seed <= 1500; seed++) {
      const e = randomEvent(seed);
      const want = Buffer.from(toBinary(AuditEventSchema, e)).toString("hex");
      expect(Buffer.from(auditEventToBinary(e)).toString("hex"), `seed ${seed}`).toBe(want);
      const back = fromJsonString(AuditEventSchema, auditEventToJson(e), { ignoreUnknownFields: true });
      expect(Buffer.from(auditEventToBinary(back)).toString("hex"), `seed ${seed} (JSON)`).toBe(
        Buffer.from(toBinary(AuditEventSchema, back)).toString("hex"),
      );
    }
  });

  it("handles long fields (multi-byte lengths, a growing buffer) and unknown fields", () => {
    const e = randomEvent(7);
    e.userAgent = "u".repeat(20_000);
    e.requestParameters = { big: "ü".repeat(70_000), list: Array.from({ length: 300 }, (_, i) => ({ i })) };
    expect(Buffer.from(auditEventToBinary(e)).equals(Buffer.from(toBinary(AuditEventSchema, e)))).toBe(true);
    // Field 99 (varint 5) is unknown to the schema: kept in $unknown and written back last.
    const withUnknown = fromBinary(
      AuditEventSchema,
      Buffer.concat([toBinary(AuditEventSchema, e), Buffer.from([0x98, 0x06, 5])]),
    );
    expect(withUnknown.$unknown?.length).toBe(1);
    expect(
      Buffer.from(auditEventToBinary(withUnknown)).equals(Buffer.from(toBinary(AuditEventSchema, withUnknown))),
    ).toBe(true);
  });

  it("computeEventHash equals a SHA-256 over toBinary's bytes, and leaves the hash field as it was", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const e = randomEvent(seed);
      if (e.tollgate === undefined) continue;
      e.tollgate.hash = "kept";
      const copy = fromBinary(AuditEventSchema, toBinary(AuditEventSchema, e));
      if (copy.tollgate !== undefined) copy.tollgate.hash = "";
      const want = createHash("sha256")
        .update(e.tollgate.prevHash, "utf8")
        .update(Buffer.from([0]))
        .update(toBinary(AuditEventSchema, copy))
        .digest("hex");
      expect(computeEventHash(e), `seed ${seed}`).toBe(want);
      expect(e.tollgate.hash).toBe("kept");
    }
  });
});

describe("auditEventFromJson fast path", () => {
  it("takes the edge's JSON and returns exactly what fromJsonString returns", () => {
    for (let seed = 1; seed <= 1500; seed++) {
      const json = auditEventToJson(randomEvent(seed));
      const fast = fastFromJson(AuditEventSchema, json);
      expect(fast, `seed ${seed} declined`).toBeDefined();
      expect(shape(fast), `seed ${seed}`).toEqual(reference(json));
    }
  });

  it("leaves everything else to fromJsonString, with the same outcome", () => {
    const base = auditEventToJson(randomEvent(3));
    const obj = JSON.parse(base) as Record<string, unknown>;
    const tg = (patch: Record<string, unknown>) =>
      JSON.stringify({ ...obj, tollgate: { ...(obj.tollgate as object), ...patch } });
    const deep = (n: number): unknown => (n === 0 ? 1 : { d: deep(n - 1) });
    const variants: Record<string, string> = {
      pretty: JSON.stringify(obj, null, 2),
      duplicateKey: base.replace('"eventVersion":', '"eventID":"dup","eventVersion":'),
      protoName: JSON.stringify({ ...obj, event_id: "other" }),
      unknownKey: JSON.stringify({ ...obj, extra: { a: 1 } }),
      nullMessage: JSON.stringify({ ...obj, userIdentity: null }),
      nullString: JSON.stringify({ ...obj, eventName: null }),
      nullList: JSON.stringify({ ...obj, resources: null }),
      numberForString: JSON.stringify({ ...obj, eventName: 5 }),
      enumNumber: tg({ decision: 2 }),
      enumUnknown: tg({ decision: "DECISION_MAYBE" }),
      int64Number: tg({ bytesIn: 5 }),
      int64Padded: tg({ bytesIn: "007" }),
      int64TooBig: tg({ bytesIn: "9223372036854775808" }),
      uint64Negative: tg({ sequence: "-1" }),
      int32Fraction: tg({ httpStatus: 1.5 }),
      int32TooBig: tg({ httpStatus: 3e9 }),
      int32String: tg({ httpStatus: "200" }),
      doubleNaN: tg({ durationMs: "NaN" }),
      doubleString: tg({ durationMs: "1.5" }),
      loneSurrogate: JSON.stringify({ ...obj, eventName: "\ud800" }),
      loneSurrogateInStruct: JSON.stringify({ ...obj, requestParameters: { k: "\udc00" } }),
      emoji: JSON.stringify({ ...obj, eventName: "😀", requestParameters: { "😀": "😀" } }),
      protoKey: JSON.stringify({ ...obj, requestParameters: JSON.parse('{"__proto__":{"x":1},"a":2}') }),
      protoKeyPrimitive: JSON.stringify({ ...obj, requestParameters: JSON.parse('{"__proto__":5,"a":2}') }),
      structNotObject: JSON.stringify({ ...obj, requestParameters: [1, 2] }),
      structDeepOk: JSON.stringify({ ...obj, requestParameters: deep(20) }),
      structTooDeep: JSON.stringify({ ...obj, requestParameters: deep(120) }),
      integerKeys: JSON.stringify({ ...obj, requestParameters: { b: 1, 10: 2, 2: 3, a: [null, true, {}] } }),
      resourceNotObject: JSON.stringify({ ...obj, resources: ["arn"] }),
      resourceNullItem: JSON.stringify({ ...obj, resources: [null] }),
      escapedKey: base.replace('"eventName"', '"event\\u004eame"'),
      topArray: "[]",
      topString: '"x"',
      notJson: "{",
      empty: "{}",
    };
    for (const [name, json] of Object.entries(variants)) {
      const fast = fastFromJson(AuditEventSchema, json);
      const want = reference(json);
      if (fast !== undefined) expect(shape(fast), name).toEqual(want);
      expect(actual(json), name).toEqual(want);
    }
    // The cases the fast path must not take.
    for (const name of ["duplicateKey", "loneSurrogate", "protoKey", "structTooDeep", "enumUnknown", "unknownKey"]) {
      expect(fastFromJson(AuditEventSchema, variants[name] as string), name).toBeUndefined();
    }
    expect(reference(variants.duplicateKey as string)).toBe("throws");
    expect(reference(variants.loneSurrogate as string)).toBe("throws");
  });
});
