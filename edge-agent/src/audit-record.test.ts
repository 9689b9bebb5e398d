import { createHash } from "node:crypto";
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
