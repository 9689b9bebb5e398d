import { createHash } from "node:crypto";
import { referenceSigV4Signer } from "@tollgate/sdk";
import { describe, expect, it } from "vitest";
import { parseRawQuery } from "./sigv4-verifier.js";
import { type UpstreamCredentials, UpstreamSigner } from "./upstream-signer.js";

const withToken: UpstreamCredentials = {
  accessKeyId: "ASIAUPSTREAMEXAMPLE",
  secretAccessKey: "upstream/secret+key",
  sessionToken: "FwoGZXIvYXdzEXAMPLE//token=",
};
const withoutToken: UpstreamCredentials = { accessKeyId: "AKIAUPSTREAMEXAMPLE", secretAccessKey: "upstream-secret" };

interface Case {
  name: string;
  service: string;
  region: string;
  credentials: UpstreamCredentials;
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: Record<string, string>;
  body?: string;
}

const S3_HOST = "bench-bucket.s3.eu-west-1.amazonaws.com";
const CASES: Case[] = [
  {
    name: "S3 GetObject, virtual-hosted, key with encoded characters, session token",
    service: "s3",
    region: "eu-west-1",
    credentials: withToken,
    method: "GET",
    rawPath: "/photos/2026%20summer/a%2Bb%3Dc~%C3%A9.jpg",
    rawQuery: "",
    headers: {
      host: S3_HOST,
      "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
      "amz-sdk-invocation-id": "5f2d0c3e-1234-4c1f-9a0b-1234567890ab",
      "amz-sdk-request": "attempt=1; max=3",
      "user-agent": "aws-sdk-js/3.700.0 ua/2.1 os/linux#6 lang/js",
      range: "bytes=0-99",
    },
  },
  {
    name: "S3 ListObjectsV2 with repeated, empty and encoded query parameters",
    service: "s3",
    region: "us-east-1",
    credentials: withoutToken,
    method: "GET",
    rawPath: "/bucket",
    rawQuery: "list-type=2&prefix=a%2Fb%20c&delimiter=%2F&b=2&b=1&empty=&flag&encoding-type=url",
    headers: { host: "s3.us-east-1.amazonaws.com", "x-amz-content-sha256": createHash("sha256").digest("hex") },
  },
  {
    name: "S3 PutObject in signed chunks (the seed of the chunk chain)",
    service: "s3",
    region: "eu-west-1",
    credentials: withToken,
    method: "PUT",
    rawPath: "/big.bin",
    rawQuery: "",
    headers: {
      host: S3_HOST,
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "content-encoding": "aws-chunked",
      "x-amz-decoded-content-length": "1048576",
      "content-length": "1049000",
      "content-type": "application/octet-stream",
      "x-amz-meta-note": "  two   spaces  inside ",
    },
  },
  {
    name: "DynamoDB GetItem: JSON body, no x-amz-content-sha256 (the body's hash is signed)",
    service: "dynamodb",
    region: "eu-west-1",
    credentials: withToken,
    method: "POST",
    rawPath: "/",
    rawQuery: "",
    headers: {
      host: "dynamodb.eu-west-1.amazonaws.com",
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": "DynamoDB_20120810.GetItem",
      "content-length": "60",
    },
    body: '{"TableName":"t","Key":{"pk":{"S":"a b"}},"ConsistentRead":true}',
  },
  {
    name: "Lambda Invoke: ARN in the path, encoded once more for a non-S3 service",
    service: "lambda",
    region: "eu-west-1",
    credentials: withoutToken,
    method: "POST",
    rawPath: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Amy-fn/invocations",
    rawQuery: "Qualifier=%24LATEST",
    headers: { host: "lambda.eu-west-1.amazonaws.com", "content-type": "application/json" },
    body: '{"x":1}',
  },
  {
    name: "non-S3 path with dot segments and a trailing slash (normalised before encoding)",
    service: "execute-api",
    region: "eu-central-1",
    credentials: withoutToken,
    method: "GET",
    rawPath: "/prod/./a/../b%20c/",
    rawQuery: "z=1&a=%E2%9C%93",
    headers: { host: "abc123.execute-api.eu-central-1.amazonaws.com" },
    body: "",
  },
  {
    name: "unsignable and generated headers: left unsigned, a client's date dropped",
    service: "sqs",
    region: "eu-west-1",
    credentials: withToken,
    method: "POST",
    rawPath: "/",
    rawQuery: "",
    headers: {
      host: "sqs.eu-west-1.amazonaws.com",
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      "user-agent": "aws-cli/2.15.0",
      "cache-control": "no-cache",
      "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793",
      "proxy-foo": "bar",
      "sec-fetch-mode": "cors",
      date: "Thu, 26 Nov 2026 10:00:00 GMT",
    },
    body: "Action=ListQueues&Version=2012-11-05",
  },
];

/** The query as `@smithy/signature-v4` takes it: decoded, repeated keys as arrays. */
function queryObject(rawQuery: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of parseRawQuery(rawQuery)) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return query;
}

describe("UpstreamSigner", () => {
  const signingDate = new Date("2026-11-27T21:45:07.123Z");

  it.each(CASES)("signs as @smithy/signature-v4 does: $name", async (c) => {
    const reference = await referenceSigV4Signer(c.credentials, c.service, c.region).sign(
      {
        method: c.method,
        protocol: "https:",
        hostname: c.headers.host as string,
        path: c.rawPath,
        query: queryObject(c.rawQuery),
        headers: { ...c.headers },
        ...(c.body !== undefined ? { body: c.body } : {}),
      },
      { signingDate },
    );
    const payloadHash =
      c.headers["x-amz-content-sha256"] ??
      createHash("sha256")
        .update(c.body ?? "")
        .digest("hex");
    const input = { ...c.headers };
    const ours = new UpstreamSigner().sign(
      { method: c.method, rawPath: c.rawPath, rawQuery: c.rawQuery, headers: input, payloadHash },
      c.credentials,
      c.service,
      c.region,
      signingDate,
    );
    expect(ours).toEqual(reference.headers);
    expect(ours.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=.+, SignedHeaders=.+, Signature=[0-9a-f]{64}$/);
    // The request's own headers are not touched.
    expect(input).toEqual(c.headers);
  });

  it("changes the signature when anything signed changes, and only then", () => {
    const signer = new UpstreamSigner();
    const base = {
      method: "GET",
      rawPath: "/k",
      rawQuery: "a=1",
      headers: { host: S3_HOST, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "user-agent": "one" },
      payloadHash: "UNSIGNED-PAYLOAD",
    };
    const at = new Date("2026-11-27T00:00:00Z");
    const sig = (r: typeof base, creds = withToken, region = "eu-west-1") =>
      /Signature=([0-9a-f]{64})/.exec(signer.sign(r, creds, "s3", region, at).authorization ?? "")?.[1];
    const original = sig(base);
    expect(sig({ ...base, headers: { ...base.headers, "user-agent": "two" } })).toBe(original);
    expect(sig({ ...base, rawPath: "/K" })).not.toBe(original);
    expect(sig({ ...base, rawQuery: "a=2" })).not.toBe(original);
    expect(sig({ ...base, method: "HEAD" })).not.toBe(original);
    expect(sig({ ...base, headers: { ...base.headers, host: "other.example" } })).not.toBe(original);
    expect(sig({ ...base, payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER" })).not.toBe(original);
    expect(sig(base, { ...withToken, sessionToken: "another" })).not.toBe(original);
    expect(sig(base, withToken, "us-east-1")).not.toBe(original);
  });
});
