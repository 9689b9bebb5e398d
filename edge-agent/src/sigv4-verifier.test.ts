import { createHash } from "node:crypto";
import { referenceSigV4Signer } from "@tollgate/sdk";
import { describe, expect, it } from "vitest";
import {
  canonicalHeaderValue,
  parseSigV4Authorization,
  parseSigV4Query,
  type SignedRequestParts,
  SigningKeyCache,
  type SigV4Authorization,
  SigV4Problem,
  verifySigV4,
} from "./sigv4-verifier.js";

const creds = { accessKeyId: "TGIAEXAMPLE", secretAccessKey: "secret-one", sessionToken: "tok" };

/** Signs with @smithy/signature-v4 (an independent implementation) and returns the wire view. */
async function signed(opts: {
  service: string;
  method: string;
  path: string;
  query?: Record<string, string>;
  rawQuery?: string;
  body?: string;
  headers?: Record<string, string>;
  date?: Date;
}): Promise<{ auth: string; parts: SignedRequestParts }> {
  const signer = referenceSigV4Signer(creds, opts.service, "eu-west-1");
  const payloadHash = createHash("sha256")
    .update(opts.body ?? "")
    .digest("hex");
  const headers: Record<string, string> = {
    host: "edge.local:8787",
    ...(opts.service === "s3" ? { "x-amz-content-sha256": payloadHash } : {}),
    ...opts.headers,
  };
  const req = await signer.sign(
    {
      method: opts.method,
      protocol: "http:",
      hostname: "edge.local",
      port: 8787,
      path: opts.path,
      query: opts.query ?? {},
      headers,
      ...(opts.body !== undefined ? { body: opts.body } : {}),
    },
    { signingDate: opts.date ?? new Date() },
  );
  const rawHeaders: string[] = [];
  for (const [k, v] of Object.entries(req.headers)) {
    if (k !== "authorization") rawHeaders.push(k, v);
  }
  return {
    auth: req.headers.authorization as string,
    parts: {
      method: opts.method,
      rawPath: opts.path,
      rawQuery: opts.rawQuery ?? "",
      rawHeaders,
      payloadHash,
      amzDate: req.headers["x-amz-date"] as string,
    },
  };
}

const keys = new SigningKeyCache();
const opts = { maxSkewMs: 15 * 60_000 };

describe("verifySigV4", () => {
  it("accepts an S3 request signed by @smithy/signature-v4, path as sent", async () => {
    const { auth, parts } = await signed({
      service: "s3",
      method: "GET",
      path: "/bucket/dir/a%20b%2Bc.txt",
      query: { "list-type": "2", prefix: "a/b c" },
      rawQuery: "list-type=2&prefix=a%2Fb%20c",
    });
    const parsed = parseSigV4Authorization(auth);
    expect(parsed.service).toBe("s3");
    expect(parsed.region).toBe("eu-west-1");
    expect(() => verifySigV4(parsed, parts, creds.secretAccessKey, keys, opts)).not.toThrow();
  });

  it("accepts a DynamoDB request with a hashed JSON body (double-encoded path)", async () => {
    const body = JSON.stringify({ TableName: "t" });
    const { auth, parts } = await signed({
      service: "dynamodb",
      method: "POST",
      path: "/",
      body,
      headers: { "x-amz-target": "DynamoDB_20120810.GetItem", "content-type": "application/x-amz-json-1.0" },
    });
    expect(() => verifySigV4(parseSigV4Authorization(auth), parts, creds.secretAccessKey, keys, opts)).not.toThrow();
  });

  it("rejects a wrong secret, a changed header, path, query or body", async () => {
    const { auth, parts } = await signed({
      service: "s3",
      method: "PUT",
      path: "/bucket/key",
      body: "hello",
      headers: { "x-amz-meta-a": "1" },
    });
    const a = parseSigV4Authorization(auth);
    const expectMismatch = (p: SignedRequestParts, secret = creds.secretAccessKey): void => {
      try {
        verifySigV4(a, p, secret, keys, opts);
        expect.unreachable("verification should fail");
      } catch (err) {
        expect(err).toBeInstanceOf(SigV4Problem);
        expect((err as SigV4Problem).code).toBe("mismatch");
      }
    };
    expectMismatch(parts, "secret-two");
    expectMismatch({ ...parts, rawPath: "/bucket/key2" });
    expectMismatch({ ...parts, rawQuery: "x=1" });
    expectMismatch({ ...parts, payloadHash: createHash("sha256").update("HELLO").digest("hex") });
    expectMismatch({ ...parts, rawHeaders: parts.rawHeaders.map((h) => (h === "1" ? "2" : h)) });
    expectMismatch({ ...parts, method: "POST" });
  });

  it("rejects requests outside the clock-skew window", async () => {
    const { auth, parts } = await signed({
      service: "sts",
      method: "POST",
      path: "/",
      body: "Action=X",
      date: new Date(Date.now() - 6 * 60_000),
    });
    try {
      verifySigV4(parseSigV4Authorization(auth), parts, creds.secretAccessKey, keys, { maxSkewMs: 5 * 60_000 });
      expect.unreachable();
    } catch (err) {
      expect((err as SigV4Problem).code).toBe("skewed");
    }
  });

  it("parses and refuses malformed Authorization headers", () => {
    expect(() => parseSigV4Authorization(undefined)).toThrow(SigV4Problem);
    expect(() => parseSigV4Authorization("AWS4-HMAC-SHA256 Credential=x")).toThrow(/Credential/);
    expect(() =>
      parseSigV4Authorization(
        `AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=${"0".repeat(64)}`,
      ),
    ).toThrow(/Host/);
  });
});

describe("presigned URLs (query form)", () => {
  async function presigned(opts: { expiresIn: number; date?: Date; query?: Record<string, string> }) {
    const signer = referenceSigV4Signer(creds, "s3", "eu-west-1");
    const req = await signer.presign(
      {
        method: "GET",
        protocol: "http:",
        hostname: "edge.local",
        port: 8787,
        path: "/bucket/a%20b.txt",
        query: opts.query ?? {},
        headers: { host: "edge.local:8787", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      },
      {
        expiresIn: opts.expiresIn,
        signingDate: opts.date ?? new Date(),
      },
    );
    const rawQuery = Object.entries(req.query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join("&");
    const parts: SignedRequestParts = {
      method: "GET",
      rawPath: "/bucket/a%20b.txt",
      rawQuery,
      rawHeaders: ["Host", "edge.local:8787"],
      payloadHash: "UNSIGNED-PAYLOAD",
      amzDate: "",
    };
    return { rawQuery, parts };
  }

  it("parses and verifies a URL presigned by @smithy/signature-v4, session token in the query", async () => {
    const { rawQuery, parts } = await presigned({ expiresIn: 3600, query: { "response-content-type": "text/plain" } });
    const auth = parseSigV4Query(rawQuery);
    expect(auth).toMatchObject({ form: "query", accessKeyId: "TGIAEXAMPLE", service: "s3", expiresSec: 3600 });
    expect(auth?.securityToken).toBe("tok");
    expect(verifySigV4(auth as SigV4Authorization, parts, creds.secretAccessKey, keys, opts)).toBe(auth?.amzDate);
    // Any change to the query (other than the signature itself) breaks it.
    const changed = { ...parts, rawQuery: rawQuery.replace("text%2Fplain", "text%2Fhtml") };
    expect(() => verifySigV4(auth as SigV4Authorization, changed, creds.secretAccessKey, keys, opts)).toThrow(
      SigV4Problem,
    );
  });

  it("accepts a 7-day URL until it expires, then says 'Request has expired'", async () => {
    const week = 604_800;
    const { rawQuery, parts } = await presigned({ expiresIn: week, date: new Date(Date.now() - (week - 60) * 1000) });
    const auth = parseSigV4Query(rawQuery) as SigV4Authorization;
    expect(() => verifySigV4(auth, parts, creds.secretAccessKey, keys, opts)).not.toThrow();
    try {
      verifySigV4(auth, parts, creds.secretAccessKey, keys, { ...opts, nowMs: Date.now() + 120_000 });
      expect.unreachable();
    } catch (err) {
      expect((err as SigV4Problem).code).toBe("expired");
      expect((err as SigV4Problem).message).toBe("Request has expired");
    }
  });

  it("refuses incomplete or out-of-range presign parameters, ignores queries without them", () => {
    expect(parseSigV4Query("list-type=2&prefix=X-Amz-")).toBeUndefined();
    expect(() => parseSigV4Query("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00")).toThrow(SigV4Problem);
    const base =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request" +
      `&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=${"0".repeat(64)}`;
    expect(parseSigV4Query(`${base}&X-Amz-Expires=604800`)?.expiresSec).toBe(604_800);
    expect(() => parseSigV4Query(`${base}&X-Amz-Expires=604801`)).toThrow(/week/);
    expect(() => parseSigV4Query(`${base}&X-Amz-Expires=0`)).toThrow(SigV4Problem);
    expect(() => parseSigV4Query(base)).toThrow(/X-Amz-Expires/);
  });
});

describe("SigV2 (S3's deprecated signature)", () => {
  const sigV2 = { code: "unsupported", message: expect.stringContaining("Please use AWS4-HMAC-SHA256") };

  it("refuses a SigV2 presigned URL as unsupported, with the key and session token it claims", () => {
    const query = "AWSAccessKeyId=ASIAEXAMPLE&Signature=abc%2Bdef%3D&x-amz-security-token=tg1.tok&Expires=1900000000";
    try {
      parseSigV4Query(query);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({
        ...sigV2,
        legacy: { service: "s3", accessKeyId: "ASIAEXAMPLE", securityToken: "tg1.tok" },
      });
    }
    // Not SigV2 unless all three parameters are there; SigV4 parameters take precedence.
    expect(parseSigV4Query("AWSAccessKeyId=AK&Signature=x")).toBeUndefined();
  });

  it("refuses a SigV2 Authorization header as unsupported", () => {
    try {
      parseSigV4Authorization("AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=");
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ ...sigV2, legacy: { service: "s3", accessKeyId: "AKIDEXAMPLE" } });
    }
  });
});

describe("canonicalHeaderValue", () => {
  it("equals trim() and collapsing each whitespace run, on strings of spaces, tabs, breaks and others", () => {
    const parts = ["a", "b c", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\ufeff", "\u3000", "é", "x"];
    let seed = 7;
    for (let n = 0; n < 5000; n++) {
      let value = "";
      for (let k = n % 7; k >= 0; k--) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        value += parts[(seed >>> 16) % parts.length];
      }
      expect(canonicalHeaderValue(value)).toBe(value.trim().replace(/\s+/g, " "));
    }
  });
});
