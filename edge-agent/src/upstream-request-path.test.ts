import { describe, expect, it } from "vitest";
import { upstreamPath, upstreamVirtualHost, virtualHostedBucket } from "./upstream-request-path.js";

const MOTO = "http://127.0.0.1:5000";

describe("virtualHostedBucket", () => {
  it.each([
    ["bucket.s3.us-east-1.amazonaws.com", "bucket"],
    ["bucket.s3.amazonaws.com", "bucket"],
    ["my.dotted.bucket.s3.eu-west-1.amazonaws.com", "my.dotted.bucket"],
    ["bucket.s3-us-west-2.amazonaws.com", "bucket"],
    ["bucket.s3.dualstack.us-east-1.amazonaws.com", "bucket"],
    ["bucket.s3-external-1.amazonaws.com", "bucket"],
    ["bucket.s3.cn-north-1.amazonaws.com.cn", "bucket"],
    ["bucket.s3.us-gov-west-1.amazonaws.com", "bucket"],
    ["Bucket.S3.US-EAST-1.amazonaws.com:443", "bucket"],
    ["bucket.s3.us-east-1.amazonaws.com:443", "bucket"],
  ])("%s → %s", (host, bucket) => {
    expect(virtualHostedBucket(host, "s3")).toBe(bucket);
  });

  it.each([
    "s3.us-east-1.amazonaws.com",
    "s3.amazonaws.com",
    "s3-us-west-2.amazonaws.com",
    "123456789012.s3-control.us-east-1.amazonaws.com",
    "ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com",
    "bucket.s3.us-east-1.amazonaws.com.evil.example",
    "127.0.0.1:8787",
    "localhost",
    "",
  ])("%s is not virtual-hosted", (host) => {
    expect(virtualHostedBucket(host, "s3")).toBeUndefined();
  });

  it("only for the s3 signing name", () => {
    expect(virtualHostedBucket("bucket.s3.us-east-1.amazonaws.com", "dynamodb")).toBeUndefined();
  });
});

describe("upstreamPath", () => {
  it("rewrites virtual-hosted S3 to path style for an endpoint, raw encoding kept", () => {
    expect(upstreamPath("/dir/a%20b.txt", "bucket.s3.us-east-1.amazonaws.com", "s3", MOTO)).toBe(
      "/bucket/dir/a%20b.txt",
    );
    expect(upstreamPath("/", "bucket.s3.us-east-1.amazonaws.com", "s3", MOTO)).toBe("/bucket");
    expect(upstreamPath("//double", "bucket.s3.amazonaws.com", "s3", MOTO)).toBe("/bucket//double");
  });

  it("keeps the path for real AWS, path-style hosts and the edge's own host", () => {
    expect(upstreamPath("/key", "bucket.s3.us-east-1.amazonaws.com", "s3", "")).toBe("/key");
    expect(upstreamPath("/bucket/key", "s3.us-east-1.amazonaws.com", "s3", MOTO)).toBe("/bucket/key");
    expect(upstreamPath("/bucket/key", "127.0.0.1:8787", "s3", MOTO)).toBe("/bucket/key");
    expect(upstreamPath("/", "dynamodb.us-east-1.amazonaws.com", "dynamodb", MOTO)).toBe("/");
  });
});

describe("upstreamVirtualHost", () => {
  it("is the bucket host on real AWS only", () => {
    expect(upstreamVirtualHost("bucket.s3.us-east-1.amazonaws.com:443", "s3", "")).toBe(
      "bucket.s3.us-east-1.amazonaws.com",
    );
    expect(upstreamVirtualHost("bucket.s3.us-east-1.amazonaws.com", "s3", MOTO)).toBeUndefined();
    expect(upstreamVirtualHost("s3.us-east-1.amazonaws.com", "s3", "")).toBeUndefined();
    expect(upstreamVirtualHost("127.0.0.1:8787", "s3", "")).toBeUndefined();
  });
});
