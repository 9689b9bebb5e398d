import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classifyRequest } from "./aws-classifier.js";
import { AWS_MODELS_URL, awsModels, loadAwsModels } from "./aws-models.js";
import { decodeCbor } from "./cbor-decoder.js";
import { resolveUpstreamTarget, upstreamRequestPath } from "./upstream-endpoint.js";

const base = { query: [] as Array<[string, string]>, region: "eu-west-1", accountId: "123456789012" };

/**
 * Operations the round trip cannot tell apart because AWS binds them identically (same method,
 * path and query keys); the classifier picks one of each pair deterministically.
 */
const KNOWN_AMBIGUOUS: Record<string, string[]> = {};

describe("generated AWS models", () => {
  it("loads every service of the pinned models", () => {
    const models = awsModels();
    expect(models.services.length).toBeGreaterThan(250);
    expect(models.byTargetPrefix("TrentService")[0]?.key).toBe("kms");
    expect(models.byAlias("secrets-manager")?.key).toBe("secretsmanager");
    expect(models.byAlias("SECRETS_MANAGER")?.key).toBe("secretsmanager");
    expect(models.bySigningName("rds")[0]?.key).toBe("rds");
  });

  it("reads a service's operations only when they are first needed, and once", () => {
    const reads: string[] = [];
    const models = loadAwsModels(readFileSync(new URL("index.json", AWS_MODELS_URL), "utf8"), (key) => {
      reads.push(key);
      return readFileSync(new URL(`${key}.json`, AWS_MODELS_URL), "utf8");
    });
    const s3 = models.bySigningName("s3");
    expect(s3.map((m) => m.key)).toEqual(["s3", "s3control"]);
    expect(models.byTargetPrefix("DynamoDB_20120810")[0]?.endpointPrefix).toBe("dynamodb");
    expect(reads).toEqual([]);
    expect(s3[0]?.operations.has("GetObject")).toBe(true);
    expect(s3[0]?.restOperations.get("GET")?.length).toBeGreaterThan(10);
    expect(s3[0]?.subresources.has("uploads")).toBe(true);
    expect(reads).toEqual(["s3"]);
  });

  // Every rest operation of these services, requested from its own HTTP binding, must come back.
  const REST_SERVICES = [
    "s3",
    "s3control",
    "lambda",
    "apigateway",
    "sesv2",
    "route53",
    "cloudfront",
    "iot",
    "eks",
    "glacier",
    "efs",
    "ecr-public",
  ];
  it.each(REST_SERVICES.filter((k) => awsModels().byKey(k) !== undefined))("round-trips %s operations", (key) => {
    const model = awsModels().byKey(key);
    if (model === undefined) throw new Error(key);
    let total = 0;
    const misses: string[] = [];
    for (const op of model.operations.values()) {
      if (op.http === undefined || op.deprecated) continue;
      total++;
      const path = `/${op.http.segments
        .map((s) => (s.kind === "literal" ? s.value : s.kind === "greedy" ? "a/b" : s.kind === "label" ? "x1" : "lit"))
        .join("/")}`;
      const query: Array<[string, string]> = op.http.literalQuery.map(([k, v]) => [k, v ?? ""]);
      for (const k of op.requiredQuery) query.push([k, "1"]);
      const headers: Record<string, string> = { host: "127.0.0.1:8787" };
      for (const h of op.requiredHeaders) headers[h] = "/src/key";
      const c = classifyRequest({
        ...base,
        method: op.http.method,
        rawPath: path,
        query,
        headers,
        signingName: model.signingName,
      });
      if (c.eventName !== op.name) misses.push(`${op.name}→${c.eventName}`);
    }
    // Misses are operations whose bindings AWS itself makes indistinguishable (same method/path/query).
    expect(total).toBeGreaterThan(0);
    expect(misses).toEqual(KNOWN_AMBIGUOUS[key] ?? []);
  });
});

describe("routing", () => {
  it("per-service endpoint prefix /svc/<id>/ is stripped and reported", () => {
    const c = classifyRequest({
      ...base,
      method: "GET",
      rawPath: "/svc/lambda/2015-03-31/functions/f",
      headers: {},
      signingName: "lambda",
    });
    expect(c).toMatchObject({ eventName: "GetFunction", upstreamPath: "/2015-03-31/functions/f" });
    expect(upstreamRequestPath("http://moto:5000", "/svc/lambda/2015-03-31/functions/f", c)).toBe(
      "/2015-03-31/functions/f",
    );
  });

  it("shared signing names: RDS/Neptune by Version, SES v1 vs v2, S3 Control", () => {
    const form = (body: string, signingName: string) =>
      classifyRequest({
        ...base,
        method: "POST",
        rawPath: "/",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        signingName,
        body: Buffer.from(body),
      });
    expect(form("Action=DescribeDBClusters&Version=2014-10-31", "rds").apiService).toBe("rds");
    expect(form("Action=DescribeLoadBalancers&Version=2015-12-01", "elasticloadbalancing").apiService).toBe("elbv2");
    expect(form("Action=DescribeLoadBalancers&Version=2012-06-01", "elasticloadbalancing").apiService).toBe("elb");
    expect(form("Action=SendEmail&Version=2010-12-01", "ses")).toMatchObject({
      apiService: "ses",
      eventName: "SendEmail",
    });
    const v2 = classifyRequest({
      ...base,
      method: "POST",
      rawPath: "/v2/email/outbound-emails",
      headers: {},
      signingName: "ses",
    });
    expect(v2).toMatchObject({ apiService: "sesv2", eventName: "SendEmail", endpointPrefix: "email" });
    const control = classifyRequest({
      ...base,
      method: "GET",
      rawPath: "/v20180820/configuration/publicAccessBlock",
      headers: { "x-amz-account-id": "123456789012", host: "123456789012.s3-control.eu-west-1.amazonaws.com" },
      signingName: "s3",
    });
    expect(control).toMatchObject({
      apiService: "s3control",
      eventName: "GetPublicAccessBlock",
      eventSource: "s3.amazonaws.com",
    });
  });

  it("Smithy RPC v2 CBOR (/service/X/operation/Y)", () => {
    // {"Namespace": "app"} in CBOR
    const body = Buffer.from([0xa1, 0x69, ...Buffer.from("Namespace"), 0x63, ...Buffer.from("app")]);
    expect(decodeCbor(body)).toEqual({ Namespace: "app" });
    const c = classifyRequest({
      ...base,
      method: "POST",
      rawPath: "/service/GraniteServiceVersion20100801/operation/PutMetricData",
      headers: { "smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor" },
      signingName: "monitoring",
      body,
    });
    expect(c).toMatchObject({
      eventName: "PutMetricData",
      protocol: "smithyRpcV2Cbor",
      apiService: "cloudwatch",
      requestParameters: { Namespace: "app" },
    });
    expect(
      classifyRequest({
        ...base,
        method: "POST",
        rawPath: "/",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        signingName: "monitoring",
        body: Buffer.from("Action=PutMetricData&Version=2010-08-01&Namespace=a"),
      }),
    ).toMatchObject({ eventName: "PutMetricData", protocol: "awsQuery" });
  });

  it("CBOR decoder: ints, floats, arrays, bytes, indefinite lengths, malformed input", () => {
    expect(decodeCbor(Buffer.from([0x83, 0x01, 0x38, 0x63, 0xf9, 0x3e, 0x00]))).toEqual([1, -100, 1.5]);
    expect(decodeCbor(Buffer.from([0x9f, 0xf5, 0xf6, 0x42, 0x01, 0x02, 0xff]))).toEqual([true, null, "AQI="]);
    expect(decodeCbor(Buffer.from([0xfb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]))).toBeCloseTo(Math.PI);
    expect(decodeCbor(Buffer.from([0xc1, 0x1a, 0x00, 0x00, 0x00, 0x01]))).toBe(1);
    expect(() => decodeCbor(Buffer.from([0x83, 0x01]))).toThrow();
    expect(() => decodeCbor(Buffer.from([0x01, 0x02]))).toThrow();
    expect(() => decodeCbor(Buffer.alloc(1000, 0x81))).toThrow();
  });
});

describe("upstream endpoint", () => {
  it("real AWS hosts from the models", () => {
    expect(resolveUpstreamTarget("", "iam", "eu-west-1", { apiService: "iam" })).toMatchObject({
      host: "iam.amazonaws.com",
      signingRegion: "us-east-1",
    });
    expect(resolveUpstreamTarget("", "iam", "cn-north-1")).toMatchObject({
      host: "iam.cn-north-1.amazonaws.com.cn",
      signingRegion: "cn-north-1",
    });
    expect(resolveUpstreamTarget("", "ses", "eu-west-1", { endpointPrefix: "email" }).host).toBe(
      "email.eu-west-1.amazonaws.com",
    );
    expect(resolveUpstreamTarget("", "monitoring", "cn-north-1").host).toBe("monitoring.cn-north-1.amazonaws.com.cn");
    expect(resolveUpstreamTarget("", "s3", "eu-west-1", { s3Bucket: "b", s3Addressing: "virtual" }).host).toBe(
      "b.s3.eu-west-1.amazonaws.com",
    );
    expect(resolveUpstreamTarget("", "sts", "eu-west-1")).toMatchObject({
      host: "sts.eu-west-1.amazonaws.com",
      signingRegion: "eu-west-1",
    });
  });

  it("a connection endpoint takes every service; virtual-hosted S3 becomes path style there", () => {
    expect(resolveUpstreamTarget("http://127.0.0.1:5000", "iam", "eu-west-1")).toMatchObject({
      host: "127.0.0.1:5000",
      signingRegion: "us-east-1",
    });
    expect(upstreamRequestPath("http://127.0.0.1:5000", "/k", { s3Bucket: "b", s3Addressing: "virtual" })).toBe("/b/k");
    expect(upstreamRequestPath("", "/k", { s3Bucket: "b", s3Addressing: "virtual" })).toBe("/k");
  });
});
