import { createHash } from "node:crypto";
import { create, equals, toBinary, toJsonString } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import {
  authMethodOf,
  buildAuditEvent,
  type CallRecord,
  capElements,
  MAX_RECORDED_ELEMENTS_BYTES,
} from "./audit-record.js";
import { classifyRequest } from "./aws-classifier.js";
import { eventCategoryOf } from "./event-category.js";
import { PayloadDigest } from "./payload-digest.js";

function dynamoCall(target: string, body: unknown): CallRecord {
  const raw = Buffer.from(JSON.stringify(body));
  const classification = classifyRequest({
    method: "POST",
    rawPath: "/",
    query: [],
    headers: { "x-amz-target": `DynamoDB_20120810.${target}`, "content-type": "application/x-amz-json-1.0" },
    signingName: "dynamodb",
    region: "eu-west-1",
    accountId: "123456789012",
    body: raw,
  });
  return {
    eventId: "e1",
    eventTimeMs: 0,
    sourceIp: "127.0.0.1",
    userAgent: "test",
    classification,
    principal: "ci-bot",
    authenticated: true,
    accessKeyId: "TGIA",
    credentialId: "cred",
    connection: "prod",
    signingName: "dynamodb",
    accountId: "123456789012",
    edge: "edge-1",
    allowed: true,
    reason: "allowed",
    httpStatus: 200,
    durationMs: 1,
    bytesIn: raw.length,
    bytesOut: 0,
    requestId: "r",
    responseElements: null,
    traceId: "",
    authForm: "header",
  };
}

/** A BatchWriteItem of about `bytes` bytes of items. */
function batchWrite(bytes: number): Record<string, unknown> {
  const items = [];
  for (let i = 0; i * 10_000 < bytes; i++) {
    items.push({ PutRequest: { Item: { pk: { S: `k${i}` }, blob: { S: "x".repeat(10_000) } } } });
  }
  return { RequestItems: { orders: items }, ReturnConsumedCapacity: "TOTAL" };
}

describe("eventCategoryOf", () => {
  it.each([
    ["s3", "GetObject", "Data"],
    ["s3", "PutObject", "Data"],
    ["s3", "UploadPart", "Data"],
    ["s3", "DeleteObjects", "Data"],
    ["s3", "CreateBucket", "Management"],
    ["s3", "PutBucketPolicy", "Management"],
    ["dynamodb", "PutItem", "Data"],
    ["dynamodb", "BatchWriteItem", "Data"],
    ["dynamodb", "ExecuteStatement", "Data"],
    ["dynamodb", "CreateTable", "Management"],
    ["lambda", "Invoke", "Data"],
    ["lambda", "CreateFunction", "Management"],
    ["sns", "Publish", "Data"],
    ["sns", "CreateTopic", "Management"],
    ["sqs", "SendMessage", "Data"],
    ["sqs", "CreateQueue", "Management"],
    ["secretsmanager", "GetSecretValue", "Management"],
    ["kms", "Decrypt", "Management"],
    ["sts", "GetCallerIdentity", "Management"],
    ["ec2", "GetObject", "Management"],
  ])("%s %s is %s", (service, op, category) => {
    expect(eventCategoryOf(service, op)).toBe(category);
  });
});

describe("buildAuditEvent", () => {
  it("records a DynamoDB PutItem as a Data event with the gateway credential", () => {
    const e = buildAuditEvent(dynamoCall("PutItem", { TableName: "orders", Item: { pk: { S: "1" } } }));
    expect(e.eventName).toBe("PutItem");
    expect(e.eventCategory).toBe("Data");
    expect(e.managementEvent).toBe(false);
    expect(e.eventType).toBe("AwsApiCall");
    expect(e.tollgate?.authMethod).toBe("gateway-credential");
    expect(e.tollgate?.requestParametersTruncated).toBe(false);
    expect(e.requestParameters).toMatchObject({ TableName: "orders" });
    expect(e.tlsDetails).toBeUndefined();
  });

  it("cuts a 300 KB BatchWriteItem's requestParameters to 100 KiB, keeping the small members", () => {
    const body = batchWrite(300_000);
    expect(JSON.stringify(body).length).toBeGreaterThan(300_000);
    const e = buildAuditEvent(dynamoCall("BatchWriteItem", body));
    expect(e.eventCategory).toBe("Data");
    expect(e.tollgate?.requestParametersTruncated).toBe(true);
    const params = e.requestParameters as Record<string, unknown>;
    expect(Buffer.byteLength(JSON.stringify(params))).toBeLessThanOrEqual(MAX_RECORDED_ELEMENTS_BYTES);
    expect(Object.keys(params)).toEqual(["ReturnConsumedCapacity"]);
    expect(params.ReturnConsumedCapacity).toBe("TOTAL");
  });

  it("keeps a BatchWriteItem under the cap whole", () => {
    const e = buildAuditEvent(dynamoCall("BatchWriteItem", batchWrite(50_000)));
    expect(e.tollgate?.requestParametersTruncated).toBe(false);
    expect(Object.keys(e.requestParameters ?? {}).sort()).toEqual(["RequestItems", "ReturnConsumedCapacity"]);
  });

  it("caps responseElements and flags it", () => {
    const r = dynamoCall("PutItem", { TableName: "orders", Item: {} });
    r.responseElements = { big: "y".repeat(200_000), small: 1 };
    const e = buildAuditEvent(r);
    expect(e.tollgate?.responseElementsTruncated).toBe(true);
    expect(e.responseElements).toEqual({ small: 1 });
  });

  it("records TLS details, presigned auth and payload digests", () => {
    const r = dynamoCall("GetItem", { TableName: "orders", Key: {} });
    r.tls = { tlsVersion: "TLSv1.3", cipherSuite: "TLS_AES_128_GCM_SHA256", clientProvidedHostHeader: "edge:1" };
    r.authForm = "query";
    r.requestPayload = { size: 3, sha256: "aa" };
    r.responsePayload = { size: 5, sha256: "bb" };
    const e = buildAuditEvent(r);
    expect(e.tlsDetails).toMatchObject({
      tlsVersion: "TLSv1.3",
      cipherSuite: "TLS_AES_128_GCM_SHA256",
      clientProvidedHostHeader: "edge:1",
    });
    expect(e.tollgate?.authMethod).toBe("gateway-credential-presigned");
    expect(e.tollgate?.requestPayload).toMatchObject({ size: 3n, sha256: "aa" });
    expect(e.tollgate?.responsePayload).toMatchObject({ size: 5n, sha256: "bb" });
  });

  it("has no authMethod when unauthenticated", () => {
    const r = dynamoCall("GetItem", { TableName: "orders", Key: {} });
    r.authenticated = false;
    expect(buildAuditEvent(r).tollgate?.authMethod).toBe("");
    expect(authMethodOf(true, undefined)).toBe("");
  });
});

/** The builder as it was written with protobuf-es `create()`: what buildAuditEvent must equal. */
function buildWithCreate(r: CallRecord): AuditEvent {
  const c = r.classification;
  const cap = r.maxElementsBytes ?? MAX_RECORDED_ELEMENTS_BYTES;
  const request = capElements(c.requestParameters, cap);
  const response = capElements(r.responseElements, cap);
  const eventCategory = eventCategoryOf(c.service, c.eventName);
  return create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: r.eventId,
    eventTime: new Date(r.eventTimeMs).toISOString(),
    eventSource: c.eventSource,
    eventName: c.eventName,
    awsRegion: c.awsRegion,
    sourceIpAddress: r.sourceIp,
    userAgent: r.userAgent,
    userIdentity: {
      type: r.authenticated ? "TollgatePrincipal" : "Unauthenticated",
      principalId: r.principal,
      accessKeyId: r.accessKeyId,
    },
    ...(request.value !== undefined ? { requestParameters: request.value } : {}),
    ...(response.value !== undefined ? { responseElements: response.value } : {}),
    ...(r.errorCode !== undefined ? { errorCode: r.errorCode } : {}),
    ...(r.errorMessage !== undefined ? { errorMessage: r.errorMessage } : {}),
    requestId: r.requestId,
    readOnly: c.readOnly,
    resources: c.resources.map((x) => ({ arn: x.arn, type: x.type })),
    eventType: "AwsApiCall",
    recipientAccountId: r.accountId,
    eventCategory,
    managementEvent: eventCategory === "Management",
    ...(r.tls !== undefined ? { tlsDetails: r.tls } : {}),
    tollgate: {
      connection: r.connection,
      edge: r.edge,
      decision: r.allowed ? Decision.ALLOW : Decision.DENY,
      reason: r.reason,
      durationMs: Math.round(r.durationMs * 1000) / 1000,
      httpStatus: r.httpStatus,
      bytesIn: BigInt(r.bytesIn),
      bytesOut: BigInt(r.bytesOut),
      signingName: r.signingName !== "" ? r.signingName : c.service,
      credentialId: r.credentialId,
      traceId: r.traceId,
      spanId: r.spanId ?? "",
      authMethod: authMethodOf(r.authenticated, r.authForm),
      requestParametersTruncated: request.truncated,
      responseElementsTruncated: response.truncated,
      ...(r.requestPayload !== undefined
        ? { requestPayload: { size: BigInt(r.requestPayload.size), sha256: r.requestPayload.sha256 } }
        : {}),
      ...(r.responsePayload !== undefined
        ? { responsePayload: { size: BigInt(r.responsePayload.size), sha256: r.responsePayload.sha256 } }
        : {}),
      ...(r.upstreamIdentity !== undefined ? { upstreamIdentity: r.upstreamIdentity } : {}),
    },
  });
}

/** Keys of every object in `v`, in order, by path: create() and the literals must agree on shape. */
function keyOrder(v: unknown, path = "", out: string[] = []): string[] {
  if (v === null || typeof v !== "object") return out;
  out.push(`${path}: ${Object.keys(v).join(",")}`);
  for (const [k, x] of Object.entries(v)) keyOrder(x, `${path}.${k}`, out);
  return out;
}

describe("buildAuditEvent matches protobuf-es create()", () => {
  let seed = 42;
  const rand = (n: number): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)] as T;
  const s3Call = (rawPath: string, method: string): CallRecord => ({
    ...dynamoCall("GetItem", {}),
    classification: classifyRequest({
      method,
      rawPath,
      query: pick([[], [["list-type", "2"]], [["prefix", "a/é"]]]),
      headers: {},
      signingName: "s3",
      region: "us-east-1",
      accountId: "",
    }),
    signingName: pick(["s3", ""]),
  });

  it.each(Array.from({ length: 300 }, (_, i) => i))("varied record %i", () => {
    const r: CallRecord = pick([
      () => dynamoCall("GetItem", { TableName: "orders", Key: { pk: { S: "1" } } }),
      () => dynamoCall("PutItem", { TableName: "t", Item: { a: { N: "1" }, b: { B: "AAE=" } } }),
      () => dynamoCall("BatchWriteItem", batchWrite(pick([0, 50_000, 150_000]))),
      () => dynamoCall("ListTables", {}),
      () => s3Call(pick(["/bucket/key", "/bucket", "/", "/b/a%20b/c"]), pick(["GET", "PUT", "DELETE", "HEAD"])),
    ])();
    r.eventId = `e${rand(1e6)}`;
    r.eventTimeMs = rand(2e12);
    r.authenticated = rand(3) > 0;
    r.allowed = rand(2) === 0;
    r.httpStatus = pick([0, 200, 403, 503]);
    r.durationMs = rand(1e6) / 997;
    r.bytesIn = pick([0, 1, 2 ** 40]);
    r.bytesOut = rand(1e9);
    r.principal = pick(["", "ci-bot", "ünïcode"]);
    r.requestId = pick(["", "REQ1"]);
    if (rand(2) === 0) r.errorCode = pick(["", "AccessDenied"]);
    if (rand(2) === 0) r.errorMessage = pick(["", "no"]);
    if (rand(2) === 0) r.responseElements = pick([{}, { a: 1, b: [true, null, "x"] }, { big: "y".repeat(200_000) }]);
    if (rand(2) === 0) delete r.authForm;
    else r.authForm = pick(["header", "query"] as const);
    if (rand(2) === 0) r.spanId = pick(["", "00f067aa0ba902b7"]);
    if (rand(2) === 0) {
      r.tls = {
        tlsVersion: "TLSv1.3",
        cipherSuite: pick(["", "TLS_AES_128_GCM_SHA256"]),
        clientProvidedHostHeader: "h",
      };
    }
    if (rand(2) === 0) r.requestPayload = { size: rand(1e6), sha256: "aa" };
    if (rand(2) === 0) r.responsePayload = { size: pick([0, 5]), sha256: pick(["", "bb"]) };
    if (rand(2) === 0) {
      r.upstreamIdentity = {
        source: pick(["static", "edge", "assume-role"] as const),
        accessKeyId: "AKIA",
        roleArn: pick(["", "arn:aws:iam::1:role/r"]),
        assumedRoleArn: "",
        sessionName: "s",
        sourceIdentity: "",
      };
    }
    if (rand(3) === 0) r.maxElementsBytes = pick([10, 1000]);
    const expected = buildWithCreate(r);
    const capped = rand(2) === 0;
    if (capped) {
      r.cappedRequestParameters = capElements(
        r.classification.requestParameters,
        r.maxElementsBytes ?? MAX_RECORDED_ELEMENTS_BYTES,
      );
    }
    const got = buildAuditEvent(r);
    expect(equals(AuditEventSchema, got, expected)).toBe(true);
    expect(toBinary(AuditEventSchema, got)).toEqual(toBinary(AuditEventSchema, expected));
    expect(toJsonString(AuditEventSchema, got, { alwaysEmitImplicit: true })).toBe(
      toJsonString(AuditEventSchema, expected, { alwaysEmitImplicit: true }),
    );
    expect(got).toStrictEqual(expected);
    expect(keyOrder(got)).toEqual(keyOrder(expected));
  });
});

describe("capElements", () => {
  it("counts UTF-8 bytes, not characters", () => {
    const value = { a: "é".repeat(60 * 1024), b: "ok" }; // ~120 KiB of UTF-8 in 60 Ki characters
    const capped = capElements(value, MAX_RECORDED_ELEMENTS_BYTES);
    expect(capped.truncated).toBe(true);
    expect(capped.value).toEqual({ b: "ok" });
  });

  it("passes null through", () => {
    expect(capElements(null, 10)).toEqual({ value: undefined, truncated: false });
  });
});

describe("PayloadDigest", () => {
  const data = Buffer.from("hello, tollgate ".repeat(5000));
  const sha = createHash("sha256").update(data).digest("hex");

  function feed(d: PayloadDigest, body: Buffer, piece: number): void {
    for (let i = 0; i < body.length; i += piece) d.update(body.subarray(i, i + piece));
  }

  it("hashes a raw body", () => {
    const d = new PayloadDigest("raw");
    feed(d, data, 777);
    expect(d.digest()).toEqual({ size: data.length, sha256: sha });
  });

  it.each([1, 7, 65_536])("hashes the decoded data of an aws-chunked body fed in %i-byte pieces", (piece) => {
    const sig = "a".repeat(64);
    const parts: Buffer[] = [];
    for (let i = 0; i < data.length; i += 8192) {
      const chunk = data.subarray(i, i + 8192);
      parts.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${sig}\r\n`), chunk, Buffer.from("\r\n"));
    }
    parts.push(Buffer.from(`0;chunk-signature=${sig}\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n`));
    const d = new PayloadDigest("aws-chunked");
    feed(d, Buffer.concat(parts), piece);
    expect(d.digest()).toEqual({ size: data.length, sha256: sha });
  });

  it("gives no digest for a body that is not aws-chunked or ends early", () => {
    const bad = new PayloadDigest("aws-chunked");
    bad.update(Buffer.from("not chunked\r\n"));
    expect(bad.digest()).toBeUndefined();
    const short = new PayloadDigest("aws-chunked");
    short.update(Buffer.from("10\r\nabc"));
    expect(short.digest()).toBeUndefined();
  });
});
