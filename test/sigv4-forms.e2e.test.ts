import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as http from "node:http";
import { Readable } from "node:stream";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { SignatureV4 } from "@smithy/signature-v4";
import { type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForEvents } from "./support/audit.js";
import { type CaptureProxy, startCaptureProxy } from "./support/capture-proxy.js";
import { type DevInstance, startDev } from "./support/dev-instance.js";
import { decodeSignedChunks, putSignedChunks } from "./support/signed-chunk-client.js";
import { NodeSha256, recomputeSignature } from "./support/upstream-signature.js";

/**
 * Every SigV4 form through the edge. `verifying` forwards to a signature-verifying moto (the
 * independent check of re-signing); `capturing` forwards through a recording proxy to a
 * non-verifying moto, for what moto's verifier gets wrong (`+`, non-ASCII keys) and to check
 * exactly what upstream received (its signature recomputed with @smithy/signature-v4).
 */

const UPSTREAM = { accessKeyId: "AKIAUPSTREAMRESIGN01", secretAccessKey: "upstream-secret-for-resign-checks-0001" };

/** The principal of the credential `tollgate dev` prints. */
const DEMO_PRINCIPAL = "demo-agent";

let verifying: DevInstance;
let capturing: DevInstance;
let plainMoto: MotoServer;
let proxy: CaptureProxy;

interface Cred {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

function credOf(dev: DevInstance): Cred {
  return {
    accessKeyId: dev.demoEnv.AWS_ACCESS_KEY_ID as string,
    secretAccessKey: dev.demoEnv.AWS_SECRET_ACCESS_KEY as string,
    sessionToken: dev.demoEnv.AWS_SESSION_TOKEN as string,
  };
}

function s3Of(dev: DevInstance, extra: Record<string, unknown> = {}): S3Client {
  return new S3Client({
    endpoint: dev.edgeUrl,
    region: "us-east-1",
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: credOf(dev),
    ...extra,
  });
}

function signer(cred: Cred, service = "s3"): SignatureV4 {
  return new SignatureV4({
    credentials: cred,
    region: "us-east-1",
    service,
    sha256: NodeSha256,
    uriEscapePath: service !== "s3",
    applyChecksum: false,
  });
}

/** Sends a raw HTTP request, optionally with `Expect: 100-continue`, and reports whether 100 came. */
function rawRequest(
  url: string,
  req: { method: string; path: string; headers: Record<string, string>; body?: Buffer },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; gotContinue: boolean }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let gotContinue = false;
    const r = http.request({
      host: u.hostname,
      port: u.port,
      method: req.method,
      path: req.path,
      headers: req.headers,
    });
    const expectsContinue = req.headers.expect === "100-continue";
    r.on("continue", () => {
      gotContinue = true;
      r.end(req.body);
    });
    r.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          gotContinue,
        }),
      );
    });
    r.on("error", reject);
    if (!expectsContinue) r.end(req.body);
    else r.flushHeaders();
  });
}

async function headStatus(s3: S3Client, Bucket: string, Key: string): Promise<number> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket, Key }));
    return 200;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
}

function lastCaptured(match: (url: string, method: string) => boolean) {
  const found = proxy.requests.filter((r) => match(r.url, r.method)).at(-1);
  if (found === undefined) throw new Error("upstream never received the request");
  return found;
}

beforeAll(async () => {
  plainMoto = await startMotoServer({ verifySignatures: false });
  proxy = await startCaptureProxy(plainMoto.endpoint);
  [verifying, capturing] = await Promise.all([
    startDev(),
    startDev([
      "--upstream-endpoint",
      proxy.url,
      "--upstream-access-key-id",
      UPSTREAM.accessKeyId,
      "--upstream-secret-access-key",
      UPSTREAM.secretAccessKey,
    ]),
  ]);
  await s3Of(verifying).send(new CreateBucketCommand({ Bucket: "forms" }));
  await s3Of(capturing).send(new CreateBucketCommand({ Bucket: "forms" }));
});

afterAll(async () => {
  await verifying?.stop();
  await capturing?.stop();
  await proxy?.close();
  await plainMoto?.close();
});

describe("presigned URLs (query form)", () => {
  it("GET and PUT URLs from @aws-sdk/s3-request-presigner work with plain fetch (verifying upstream)", async () => {
    const s3 = s3Of(verifying);
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: "forms", Key: "presigned/a b.txt" }), {
      expiresIn: 604_800,
    });
    expect(putUrl).toContain("X-Amz-Security-Token=");
    const put = await fetch(putUrl, { method: "PUT", body: "presigned body" });
    expect(put.status, await put.clone().text()).toBe(200);
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "forms", Key: "presigned/a b.txt" }));
    const got = await fetch(getUrl);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe("presigned body");

    const events = await waitForEvents(verifying, { principal: DEMO_PRINCIPAL }, 1, { settleMs: 300 });
    const names = events.map((e) => e.eventName);
    expect(names).toContain("PutObject");
    expect(names).toContain("GetObject");
  });

  it("an expired URL is AccessDenied 'Request has expired'; a changed one SignatureDoesNotMatch; both with Date", async () => {
    const s3 = s3Of(verifying);
    const expired = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "forms", Key: "presigned/a b.txt" }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 120_000),
    });
    const r1 = await fetch(expired);
    expect(r1.status).toBe(403);
    const body1 = await r1.text();
    expect(body1).toContain("<Code>AccessDenied</Code>");
    expect(body1).toContain("Request has expired");
    expect(r1.headers.get("date")).not.toBeNull();

    const good = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "forms", Key: "presigned/a b.txt" }));
    const r2 = await fetch(good.replace("presigned/a%20b.txt", "presigned/other.txt"));
    expect(r2.status).toBe(403);
    expect(await r2.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    expect(r2.headers.get("date")).not.toBeNull();
  });

  it("upstream receives a header-signed request without the X-Amz auth parameters; its signature recomputes", async () => {
    const s3 = s3Of(capturing);
    const url = await getSignedUrl(
      s3,
      new GetObjectCommand({ Bucket: "forms", Key: "p+q ü.txt", ResponseCacheControl: "no-store" }),
    );
    await s3.send(new PutObjectCommand({ Bucket: "forms", Key: "p+q ü.txt", Body: "x" }));
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("x");
    const up = lastCaptured((u, m) => m === "GET" && u.includes("response-cache-control=no-store"));
    expect(up.url).not.toMatch(/X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token)=/);
    expect(up.url.startsWith("/forms/p%2Bq%20%C3%BC.txt?")).toBe(true);
    expect(up.headers.authorization).toMatch(new RegExp(`Credential=${UPSTREAM.accessKeyId}/`));
    const { sent, expected } = await recomputeSignature(up, UPSTREAM, "us-east-1");
    expect(sent).toBe(expected);
  });
});

describe("signed aws-chunked uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])", () => {
  it("moto directly: accepts our signed-chunk client's uploads, and does not check chunk signatures itself", async () => {
    const moto = await startMotoServer({ verifySignatures: true });
    try {
      const creds = { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey };
      const direct = new S3Client({
        endpoint: moto.endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: creds,
      });
      await direct.send(new CreateBucketCommand({ Bucket: "direct" }));
      const data = randomBytes(150_000);
      const good = await putSignedChunks({
        endpoint: moto.endpoint,
        path: "/direct/good",
        credentials: creds,
        region: "us-east-1",
        data,
        chunkBytes: 65_536,
      });
      expect(good.status, good.body).toBe(200);
      const got = await direct.send(new GetObjectCommand({ Bucket: "direct", Key: "good" }));
      expect(
        Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(
          data,
        ),
      ).toBe(true);
      const bad = await putSignedChunks({
        endpoint: moto.endpoint,
        path: "/direct/bad",
        credentials: creds,
        region: "us-east-1",
        data,
        chunkBytes: 65_536,
        tamperChunk: 1,
      });
      // moto 5.2.1 does not check chunk signatures: it stores a tampered body. Catching a
      // tampered chunk is the edge's job alone (tested below with HeadObject 404).
      expect(bad.status).toBe(200);
      expect(await headStatus(direct, "direct", "bad")).toBe(200);
    } finally {
      await moto.close();
    }
  });

  for (const trailer of [false, true]) {
    it(`through the edge to verifying moto${trailer ? ", with a signed trailer" : ""}: stored intact`, async () => {
      const data = randomBytes(300_000);
      const key = `chunked/ok-${trailer}`;
      const r = await putSignedChunks({
        endpoint: verifying.edgeUrl,
        path: `/forms/${key}`,
        credentials: credOf(verifying),
        region: "us-east-1",
        data,
        chunkBytes: 65_536,
        trailer,
      });
      expect(r.status, r.body).toBe(200);
      const got = await s3Of(verifying).send(new GetObjectCommand({ Bucket: "forms", Key: key }));
      const bytes = Buffer.from(
        await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      expect(bytes.equals(data)).toBe(true);
    });
  }

  for (const tamper of ["chunk", "trailer"] as const) {
    it(`a tampered ${tamper} is refused with SignatureDoesNotMatch and the object is never stored`, async () => {
      const key = `chunked/tampered-${tamper}`;
      const r = await putSignedChunks({
        endpoint: verifying.edgeUrl,
        path: `/forms/${key}`,
        credentials: credOf(verifying),
        region: "us-east-1",
        data: randomBytes(600_000),
        chunkBytes: 65_536,
        trailer: tamper === "trailer",
        ...(tamper === "chunk" ? { tamperChunk: 3 } : { tamperTrailer: true }),
      });
      if (r.error === undefined) {
        expect(r.status).toBe(403);
        expect(r.body).toContain("<Code>SignatureDoesNotMatch</Code>");
      }
      expect(await headStatus(s3Of(verifying), "forms", key)).toBe(404);
      const events = await waitForEvents(verifying, { principal: DEMO_PRINCIPAL, operation: "PutObject" }, 1, {
        settleMs: 500,
      });
      const ev = events.find(
        (e) => e.eventName === "PutObject" && e.resources.some((res) => res.arn.endsWith(`/${key}`)),
      );
      expect(ev?.errorCode).toBe("SignatureDoesNotMatch");
    });
  }

  it("upstream receives the same framing re-signed with the upstream key (chain checked independently)", async () => {
    const data = randomBytes(200_000);
    const r = await putSignedChunks({
      endpoint: capturing.edgeUrl,
      path: "/forms/chunked/captured",
      credentials: credOf(capturing),
      region: "us-east-1",
      data,
      chunkBytes: 65_536,
      trailer: true,
    });
    expect(r.status, r.body).toBe(200);
    const up = lastCaptured((u, m) => m === "PUT" && u === "/forms/chunked/captured");
    expect(up.headers["x-amz-content-sha256"]).toBe("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    expect(up.headers["content-encoding"]).toBe("aws-chunked");
    expect(up.headers["x-amz-decoded-content-length"]).toBe(String(data.length));
    expect(Number(up.headers["content-length"])).toBe(up.bodyBytes);
    const header = await recomputeSignature(up, UPSTREAM, "us-east-1");
    expect(header.sent).toBe(header.expected);
    const decoded = decodeSignedChunks(up.body, {
      secretAccessKey: UPSTREAM.secretAccessKey,
      amzDate: String(up.headers["x-amz-date"]),
      region: "us-east-1",
      seedSignature: header.sent,
    });
    expect(decoded.signaturesValid).toBe(true);
    expect(decoded.chunkSizes).toEqual([65_536, 65_536, 65_536, 200_000 - 3 * 65_536, 0]);
    expect(decoded.data.equals(data)).toBe(true);
    expect(decoded.trailers).toEqual([`x-amz-checksum-sha256:${createHash("sha256").update(data).digest("base64")}`]);
  });

  it("100 MiB in 64 KiB signed chunks: edge memory stays flat", async () => {
    const port = new URL(verifying.edgeUrl).port;
    const ss = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
    const pid = /pid=(\d+)/.exec(ss)?.[1];
    expect(pid, ss).toBeDefined();
    // The listening process and its edge workers (TOLLGATE_EDGE_WORKERS): one of them serves the PUT.
    const pids = [Number(pid), ...readdirSync("/proc").filter((d) => /^\d+$/.test(d) && ppidOf(d) === Number(pid))];
    const hwmOf = (p: number | string): number =>
      Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1]) / 1024;
    const hwms = (): number[] => pids.map(hwmOf);
    const befores = hwms();
    const size = 100 * 1024 * 1024;
    const started = performance.now();
    const r = await putSignedChunks({
      endpoint: verifying.edgeUrl,
      path: "/forms/chunked/big",
      credentials: credOf(verifying),
      region: "us-east-1",
      data: { size, fill: (off: number, b: Buffer) => b.fill(off % 251) },
      chunkBytes: 65_536,
    });
    const seconds = (performance.now() - started) / 1000;
    expect(r.status, r.body).toBe(200);
    const afters = hwms();
    const grew = Math.max(...afters.map((a, i) => a - (befores[i] as number)));
    console.info(
      `100 MiB signed-chunk PUT via edge: ${seconds.toFixed(1)} s; edge VmHWM per process ${befores.map((b) => b.toFixed(0)).join("/")} MiB before, ${afters.map((a) => a.toFixed(0)).join("/")} MiB after`,
    );
    // Node's own streaming (the unsigned pass-through too) raises the peak by ~40 MiB; buffering the body would add 100.
    expect(grew).toBeLessThan(64);
    const head = await s3Of(verifying).send(new HeadObjectCommand({ Bucket: "forms", Key: "chunked/big" }));
    expect(head.ContentLength).toBe(size);
  });
});

describe("signed payload hash (hex x-amz-content-sha256)", () => {
  it("a body that does not match its signed hash is refused and never stored", async () => {
    const u = new URL(verifying.edgeUrl);
    const body = Buffer.alloc(300_000, 1);
    const req = await signer(credOf(verifying)).sign({
      method: "PUT",
      protocol: "http:",
      hostname: u.hostname,
      port: Number(u.port),
      path: "/forms/hash/tampered",
      query: {},
      headers: {
        host: u.host,
        "content-length": String(body.length),
        "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"),
      },
    });
    const sent = Buffer.from(body);
    sent[sent.length - 1] = 2;
    const r = await rawRequest(verifying.edgeUrl, {
      method: "PUT",
      path: "/forms/hash/tampered",
      headers: req.headers,
      body: sent,
    });
    expect(r.status).toBe(400);
    expect(r.body).toContain("<Code>XAmzContentSHA256Mismatch</Code>");
    expect(await headStatus(s3Of(verifying), "forms", "hash/tampered")).toBe(404);
  });
});

describe("unsigned aws-chunked with checksum trailers (STREAMING-UNSIGNED-PAYLOAD-TRAILER)", () => {
  for (const algorithm of ["CRC32", "CRC32C", "SHA256", "CRC64NVME", "SHA1"] as const) {
    it(`SDK v3 streaming PutObject with a ${algorithm} trailer passes byte for byte`, async () => {
      const body = randomBytes(100_000);
      const key = `trailer/${algorithm}`;
      const s3 = s3Of(capturing);
      await s3.send(
        new PutObjectCommand({
          Bucket: "forms",
          Key: key,
          Body: Readable.from([body.subarray(0, 40_000), body.subarray(40_000)]),
          ContentLength: body.length,
          ChecksumAlgorithm: algorithm,
        }),
      );
      const up = lastCaptured((u, m) => m === "PUT" && u.startsWith(`/forms/${key}`));
      expect(up.headers["x-amz-content-sha256"]).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
      const text = up.body.toString("latin1");
      expect(text).toMatch(new RegExp(`\r\nx-amz-checksum-${algorithm.toLowerCase()}:[A-Za-z0-9+/=]+\r\n\r\n$`));
      expect(Number(up.headers["content-length"] ?? up.bodyBytes)).toBe(up.bodyBytes);
      const header = await recomputeSignature(up, UPSTREAM, "us-east-1");
      expect(header.sent).toBe(header.expected);
      const got = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: key }));
      expect(
        Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(
          body,
        ),
      ).toBe(true);
    });
  }

  it("also through the verifying upstream", async () => {
    const s3 = s3Of(verifying);
    const body = randomBytes(50_000);
    await s3.send(
      new PutObjectCommand({
        Bucket: "forms",
        Key: "trailer/v",
        Body: Readable.from([body]),
        ContentLength: body.length,
        ChecksumAlgorithm: "CRC32",
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: "trailer/v" }));
    expect(
      Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(
        body,
      ),
    ).toBe(true);
  });
});

describe("clock skew", () => {
  // SDK v3 takes the server time from the error's Date header and fixes its offset. It only
  // retries at once when the corrected offset itself is large (a machine clock really off); here
  // the machine clock is right and only the SDK's offset was wrong, so the next call succeeds.
  it("SDK v3 20 minutes behind: RequestTimeTooSkewed, the SDK corrects its clock from Date, then succeeds", async () => {
    const s3 = s3Of(verifying, { systemClockOffset: -20 * 60_000, maxAttempts: 3 });
    const first = await s3.send(new ListBucketsCommand({})).then(
      () => undefined,
      (err: unknown) => err as { name: string; $response?: { headers: Record<string, string> } },
    );
    expect(first?.name).toBe("RequestTimeTooSkewed");
    expect(first?.$response?.headers.date).toBeDefined();
    expect(Math.abs(s3.config.systemClockOffset)).toBeLessThan(60_000);
    const out = await s3.send(new ListBucketsCommand({}));
    expect(out.Buckets?.some((b) => b.Name === "forms")).toBe(true);
    const events = await waitForEvents(verifying, { principal: DEMO_PRINCIPAL, operation: "ListBuckets" }, 2, {
      settleMs: 300,
    });
    expect(events.some((e) => e.errorCode === "RequestTimeTooSkewed")).toBe(true);
  });

  it("non-S3 (STS) 10 minutes behind: skew error (5-minute window), corrected, succeeds", async () => {
    const sts = new STSClient({
      endpoint: verifying.edgeUrl,
      region: "us-east-1",
      credentials: credOf(verifying),
      systemClockOffset: -10 * 60_000,
      maxAttempts: 3,
    });
    const first = await sts.send(new GetCallerIdentityCommand({})).then(
      () => undefined,
      (err: unknown) => err as { name: string; message: string },
    );
    expect(first?.name).toBe("SignatureDoesNotMatch");
    expect(Math.abs(sts.config.systemClockOffset)).toBeLessThan(60_000);
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toContain(":user/");
  });
});

describe("Expect: 100-continue", () => {
  async function signedPut(cred: Cred, key: string, body: Buffer) {
    const u = new URL(verifying.edgeUrl);
    const req = await signer(cred).sign({
      method: "PUT",
      protocol: "http:",
      hostname: u.hostname,
      port: Number(u.port),
      path: `/forms/${key}`,
      query: {},
      headers: {
        host: u.host,
        "content-length": String(body.length),
        "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"),
      },
    });
    return { method: "PUT", path: `/forms/${key}`, headers: { ...req.headers, expect: "100-continue" }, body };
  }

  it("sends 100 Continue only after authentication; refuses a bad signature without reading the body", async () => {
    const body = Buffer.from("continue body");
    const ok = await rawRequest(verifying.edgeUrl, await signedPut(credOf(verifying), "continue/ok", body));
    expect(ok.gotContinue).toBe(true);
    expect(ok.status).toBe(200);

    const wrong = { ...credOf(verifying), secretAccessKey: "not-the-secret" };
    const bad = await rawRequest(verifying.edgeUrl, await signedPut(wrong, "continue/bad", body));
    expect(bad.gotContinue).toBe(false);
    expect(bad.status).toBe(403);
    expect(bad.body).toContain("SignatureDoesNotMatch");
    expect(bad.headers.date).toBeDefined();
    expect(await headStatus(s3Of(verifying), "forms", "continue/bad")).toBe(404);
  });
});

describe("session tokens", () => {
  it("a token sent but not signed (header form) is refused", async () => {
    const u = new URL(verifying.edgeUrl);
    const cred = credOf(verifying);
    const { sessionToken, ...noToken } = cred;
    const req = await signer(noToken as Cred).sign({
      method: "GET",
      protocol: "http:",
      hostname: u.hostname,
      port: Number(u.port),
      path: "/",
      query: {},
      headers: { host: u.host, "x-amz-content-sha256": createHash("sha256").digest("hex") },
    });
    const r = await rawRequest(verifying.edgeUrl, {
      method: "GET",
      path: "/",
      headers: { ...req.headers, "x-amz-security-token": sessionToken },
    });
    expect(r.status).toBe(400);
    expect(r.body).toContain("x-amz-security-token must be a signed header");
  });
});

describe("S3 keys are used as sent; upstream re-signing keeps the raw path", () => {
  const verifyingKeys = ["with space.txt", "a//double.txt", "x/./y/../z.txt", "dots/../..", "tilde~_-.txt"];
  const allKeys = [...verifyingKeys, "plus+sign.txt", "ünïcødé-ключ-😀.txt", "q?&=.txt"];

  it("SDK v3 put/get/list with odd keys through the verifying upstream", async () => {
    const s3 = s3Of(verifying);
    for (const Key of verifyingKeys) {
      try {
        await s3.send(new PutObjectCommand({ Bucket: "forms", Key: `keys/${Key}`, Body: Key }));
        const got = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: `keys/${Key}` }));
        expect(await got.Body?.transformToString(), Key).toBe(Key);
      } catch (err) {
        throw new Error(`key ${JSON.stringify(Key)}: ${(err as Error).name}: ${(err as Error).message}`);
      }
    }
    // No Prefix: moto's verifier rejects query values containing "/" (a known false alarm).
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "forms" }));
    const keys = (listed.Contents ?? []).map((c) => c.Key ?? "").filter((k) => k.startsWith("keys/"));
    expect(keys.sort()).toEqual(verifyingKeys.map((k) => `keys/${k}`).sort());
  });

  it("every key, including + and non-ASCII, through the capturing upstream: raw path kept, signature recomputes", async () => {
    const s3 = s3Of(capturing);
    for (const Key of allKeys) {
      await s3.send(new PutObjectCommand({ Bucket: "forms", Key: `keys/${Key}`, Body: Key }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "forms", Key: `keys/${Key}` }));
      expect(await got.Body?.transformToString(), Key).toBe(Key);
      const up = lastCaptured((_u, m) => m === "GET");
      const encoded = `/forms/keys/${Key.split("/")
        .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
        .join("/")}`;
      expect(up.url.split("?")[0], Key).toBe(encoded);
      const { sent, expected } = await recomputeSignature(up, UPSTREAM, "us-east-1");
      expect(sent, Key).toBe(expected);
    }
  });
});

describe("upstream Host", () => {
  it("is the connection's endpoint, whatever X-Forwarded-Host / Forwarded / X-Original-Host say", async () => {
    const u = new URL(capturing.edgeUrl);
    const req = await signer(credOf(capturing)).sign({
      method: "GET",
      protocol: "http:",
      hostname: u.hostname,
      port: Number(u.port),
      path: "/forms",
      query: { "list-type": "2" },
      headers: {
        host: u.host,
        "x-amz-content-sha256": createHash("sha256").digest("hex"),
        "x-forwarded-host": "evil.example.com",
        forwarded: "host=evil.example.com;proto=https",
        "x-original-host": "evil.example.com",
      },
    });
    const r = await rawRequest(capturing.edgeUrl, { method: "GET", path: "/forms?list-type=2", headers: req.headers });
    expect(r.status, r.body).toBe(200);
    const up = lastCaptured((url, m) => m === "GET" && url === "/forms?list-type=2");
    expect(up.headers.host).toBe(new URL(proxy.url).host);
    expect(up.headers["x-forwarded-host"]).toBeUndefined();
    expect(up.headers.forwarded).toBeUndefined();
    const { sent, expected, signedHeaders } = await recomputeSignature(up, UPSTREAM, "us-east-1");
    expect(signedHeaders).toContain("host");
    expect(sent).toBe(expected);
  });
});

/** Parent pid of a process, from /proc (-1 when it is gone). */
function ppidOf(pid: string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
}
