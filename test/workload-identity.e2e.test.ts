/**
 * Workload identity at the edge: STS AssumeRoleWithWebIdentity (JWTs signed here with jose, a
 * JWKS served by a test HTTP server) and service-account API keys, against a `tollgate dev`.
 * Every hostile token is refused with STS's own error code and leaves exactly one audit event.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { AssumeRoleWithWebIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { toJsonString } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  type KeyObject,
  SignJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, waitForEvents } from "./support/audit.js";
import { CLI, type DevInstance, runProcess, startDev } from "./support/dev-instance.js";

let dev: DevInstance;
let jwksServer: Server;
let issuer: string;
let tmp: string;
const roleArn = "arn:aws:iam::123456789012:role/tollgate/default";
const otherRoleArn = "arn:aws:iam::000000000000:role/tollgate/other";
const AUDIENCE = "tollgate-edge";
const SUBJECT = "system:serviceaccount:agents:builder";

let rsa: { privateKey: KeyObject; publicKey: KeyObject };
let ec: { privateKey: KeyObject; publicKey: KeyObject };
let stranger: { privateKey: KeyObject; publicKey: KeyObject };
/** Every token minted in this file: none may ever appear in logs or audit events. */
const tokens: string[] = [];

/** Runs the CLI as an agent would: the instance's API URL, but `extra` env on top. */
function cliAs(args: string[], extra: NodeJS.ProcessEnv) {
  return runProcess(process.execPath, [CLI, ...args], { ...dev.env, ...extra });
}

interface StsAnswer {
  status: number;
  code: string | undefined;
  requestId: string;
  body: string;
}

/** A requestId (= the audit eventID) per case, with what its event must say. */
const expectations: { requestId: string; errorCode: string; principal: string; connection: string }[] = [];

async function sign(
  claims: JWTPayload,
  options: { key?: KeyObject; alg?: string; kid?: string; expiresIn?: number | string } = {},
): Promise<string> {
  const alg = options.alg ?? "RS256";
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader({ alg, kid: options.kid ?? "rsa-1", typ: "JWT" })
    .setIssuedAt(now)
    .setIssuer((claims.iss as string | undefined) ?? issuer)
    .setAudience((claims.aud as string | string[] | undefined) ?? AUDIENCE)
    .setSubject((claims.sub as string | undefined) ?? SUBJECT);
  if (claims.exp === undefined) jwt.setExpirationTime(options.expiresIn ?? "10m");
  const token = await jwt.sign(options.key ?? rsa.privateKey);
  tokens.push(token);
  return token;
}

/** An unsigned awsQuery POST, exactly as the SDKs' web-identity providers send it. */
async function assumeRaw(token: string, role = roleArn, extra: Record<string, string> = {}): Promise<StsAnswer> {
  const body = new URLSearchParams({
    Action: "AssumeRoleWithWebIdentity",
    Version: "2011-06-15",
    RoleArn: role,
    RoleSessionName: "e2e-session",
    WebIdentityToken: token,
    ...extra,
  });
  const res = await fetch(`${dev.edgeUrl}/`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: body.toString(),
  });
  const text = await res.text();
  return {
    status: res.status,
    code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1],
    requestId: res.headers.get("x-amzn-requestid") ?? "",
    body: text,
  };
}

async function expectRefused(
  token: string,
  status: number,
  code: string,
  principal: string,
  role = roleArn,
): Promise<void> {
  const r = await assumeRaw(token, role);
  expect(r.status, r.body).toBe(status);
  expect(r.code, r.body).toBe(code);
  expect(r.body).toContain("<ErrorResponse");
  expect(r.body).not.toContain("SecretAccessKey");
  expect(r.requestId).not.toBe("");
  expectations.push({
    requestId: r.requestId,
    errorCode: code,
    principal,
    connection: role === roleArn ? "default" : "other",
  });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tollgate-wi-"));
  rsa = await generateKeyPair("RS256", { extractable: true });
  ec = await generateKeyPair("ES256", { extractable: true });
  stranger = await generateKeyPair("RS256", { extractable: true });
  const keys: JWK[] = [
    { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
    { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
  ];
  jwksServer = createServer((req, res) => {
    if (req.url === "/jwks.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys }));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => jwksServer.listen(0, "127.0.0.1", r));
  const port = (jwksServer.address() as AddressInfo).port;
  issuer = `http://127.0.0.1:${port}/issuer`;

  dev = await startDev();
  const admin = adminClient(dev);
  await admin.connections.createConnection({
    connection: { name: "other", region: "us-east-1", upstreamEndpoint: "http://127.0.0.1:9" },
  });
  const create = (args: string[]) => dev.cli(["trust", "create", ...args]);
  let r = await create([
    "agents",
    "--connection",
    "default",
    "--issuer",
    issuer,
    "--jwks-url",
    `http://127.0.0.1:${port}/jwks.json`,
    "--audience",
    AUDIENCE,
    "--subject",
    "system:serviceaccount:agents:*",
    "--claim",
    "env=prod*",
    "--principal",
    "k8s:{sub}",
    "--groups-claim",
    "groups",
    "--max-ttl",
    "2h",
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(`role ARN: ${roleArn}`);
  // The same issuer is trusted on "other", but only for another namespace.
  r = await create([
    "other-ns",
    "--connection",
    "other",
    "--issuer",
    issuer,
    "--jwks-url",
    `http://127.0.0.1:${port}/jwks.json`,
    "--audience",
    AUDIENCE,
    "--subject",
    "system:serviceaccount:other:*",
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await dev?.stop();
  await new Promise<void>((r) => (jwksServer ? jwksServer.close(() => r()) : r()));
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe("trust rules", () => {
  it("are listed with their settings", async () => {
    const r = await dev.cli(["trust", "list", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const rules = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rules.map((x) => `${x.connection}/${x.name}`)).toEqual(["default/agents", "other/other-ns"]);
    expect(rules[0]).toMatchObject({
      issuer,
      audiences: [AUDIENCE],
      subjectPattern: "system:serviceaccount:agents:*",
      principalTemplate: "k8s:{sub}",
      maxTtlSeconds: "7200",
    });
  });

  it("refuse an issuer that is neither https nor loopback", async () => {
    const r = await dev.cli([
      "trust",
      "create",
      "bad",
      "--connection",
      "default",
      "--issuer",
      "http://idp.example.com",
      "--audience",
      "x",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/https URL/);
  });
});

describe("AssumeRoleWithWebIdentity at the edge", () => {
  it("exchanges a valid token for a working gateway credential, audited with the mapped principal", async () => {
    const token = await sign({ env: "production", groups: ["builders", "deployers"] }, { expiresIn: "30m" });
    const sts = new STSClient({ endpoint: dev.edgeUrl, region: "us-east-1", maxAttempts: 1 });
    const out = await sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: roleArn,
        RoleSessionName: "builder-1",
        WebIdentityToken: token,
        DurationSeconds: 7200,
      }),
    );
    const c = out.Credentials;
    expect(c?.AccessKeyId).toMatch(/^TGIA/);
    expect(c?.SessionToken).toMatch(/^tg1\./);
    expect(out.SubjectFromWebIdentityToken).toBe(SUBJECT);
    expect(out.Provider).toBe(issuer);
    expect(out.Audience).toBe(AUDIENCE);
    expect(out.AssumedRoleUser?.Arn).toBe("arn:aws:sts::123456789012:assumed-role/default/builder-1");
    expect(out.AssumedRoleUser?.AssumedRoleId).toMatch(/^TGRO[0-9A-F]{17}:builder-1$/);
    // Capped by the token's exp (30 min), not DurationSeconds (2 h).
    const ttlMs = (c?.Expiration?.getTime() ?? 0) - Date.now();
    expect(ttlMs).toBeGreaterThan(25 * 60_000);
    expect(ttlMs).toBeLessThanOrEqual(30 * 60_000 + 5_000);
    const requestId = out.$metadata.requestId ?? "";
    expect(requestId).not.toBe("");

    const s3 = new S3Client({
      endpoint: dev.edgeUrl,
      region: "us-east-1",
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: {
        accessKeyId: c?.AccessKeyId ?? "",
        secretAccessKey: c?.SecretAccessKey ?? "",
        sessionToken: c?.SessionToken ?? "",
      },
    });
    await s3.send(new CreateBucketCommand({ Bucket: "wi-bucket" }));
    const listed = await s3.send(new ListBucketsCommand({}));
    expect(listed.Buckets?.map((b) => b.Name)).toContain("wi-bucket");

    const principal = `k8s:${SUBJECT}`;
    const events = await waitForEvents(dev, { principal }, 3);
    const exchange = events.filter((e) => e.eventName === "AssumeRoleWithWebIdentity");
    expect(exchange).toHaveLength(1);
    const e = exchange[0] as AuditEvent;
    expect(e.eventId).toBe(requestId);
    expect(e.eventSource).toBe("sts.amazonaws.com");
    expect(e.userIdentity?.type).toBe("WebIdentityUser");
    expect(e.tollgate?.decision).toBe(Decision.ALLOW);
    expect(e.tollgate?.connection).toBe("default");
    expect(e.tollgate?.authMethod).toBe("web-identity");
    expect(e.errorCode ?? "").toBe("");
    expect(e.requestParameters).toMatchObject({ roleArn, roleSessionName: "builder-1", durationSeconds: 7200 });
    expect(e.responseElements).toMatchObject({
      credentials: { accessKeyId: c?.AccessKeyId },
      subjectFromWebIdentityToken: SUBJECT,
      provider: issuer,
      audience: AUDIENCE,
      groups: ["builders", "deployers"],
    });
    const s3Events = events.filter((x) => x.eventSource === "s3.amazonaws.com");
    expect(s3Events.map((x) => x.eventName).sort()).toEqual(["CreateBucket", "ListBuckets"]);
    for (const x of s3Events) {
      expect(x.tollgate?.decision).toBe(Decision.ALLOW);
      expect(x.tollgate?.credentialId).toBe(e.tollgate?.credentialId);
    }
    const json = toJsonString(AuditEventSchema, e);
    expect(json).not.toContain(token);
    expect(json).not.toContain(c?.SecretAccessKey ?? "-");
    expect(json).not.toContain(c?.SessionToken ?? "-");
  }, 120_000);

  it("accepts ES256 tokens and the GET query form; the credential is capped by the rule's max TTL", async () => {
    const token = await sign({ env: "prod-eu" }, { key: ec.privateKey, alg: "ES256", kid: "ec-1", expiresIn: "5h" });
    const query = new URLSearchParams({
      Action: "AssumeRoleWithWebIdentity",
      Version: "2011-06-15",
      RoleArn: roleArn,
      RoleSessionName: "get-form",
      WebIdentityToken: token,
      DurationSeconds: "43200",
    });
    const res = await fetch(`${dev.edgeUrl}/?${query.toString()}`);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(body).toContain("<AssumeRoleWithWebIdentityResult>");
    expect(body).toMatch(/<RequestId>[0-9a-f-]{36}<\/RequestId>/);
    const expiration = Date.parse(/<Expiration>([^<]+)<\/Expiration>/.exec(body)?.[1] ?? "");
    // Rule max 2 h < DurationSeconds 12 h < token 5 h.
    expect(expiration - Date.now()).toBeLessThanOrEqual(2 * 3600_000 + 5_000);
    expect(expiration - Date.now()).toBeGreaterThan(2 * 3600_000 - 120_000);
    expectations.push({
      requestId: res.headers.get("x-amzn-requestid") ?? "",
      errorCode: "",
      principal: `k8s:${SUBJECT}`,
      connection: "default",
    });
  });

  it("issues for 1 h by default, less when DurationSeconds asks for less", async () => {
    const lifetime = async (token: string, extra: Record<string, string>): Promise<number> => {
      const r = await assumeRaw(token, roleArn, extra);
      expect(r.status, r.body).toBe(200);
      expectations.push({ requestId: r.requestId, errorCode: "", principal: `k8s:${SUBJECT}`, connection: "default" });
      return Date.parse(/<Expiration>([^<]+)<\/Expiration>/.exec(r.body)?.[1] ?? "") - Date.now();
    };
    const long = await sign({ env: "prod" }, { expiresIn: "3h" });
    const byDefault = await lifetime(long, {});
    expect(byDefault).toBeGreaterThan(3600_000 - 120_000);
    expect(byDefault).toBeLessThanOrEqual(3600_000 + 5_000);
    const short = await lifetime(long, { DurationSeconds: "900" });
    expect(short).toBeGreaterThan(900_000 - 120_000);
    expect(short).toBeLessThanOrEqual(900_000 + 5_000);
    const tooShort = await assumeRaw(long, roleArn, { DurationSeconds: "60" });
    expect(tooShort.status).toBe(400);
    expect(tooShort.code).toBe("ValidationError");
    expectations.push({
      requestId: tooShort.requestId,
      errorCode: "ValidationError",
      principal: SUBJECT,
      connection: "default",
    });
  });

  it("refuses hostile tokens with STS's error codes", async () => {
    const now = Math.floor(Date.now() / 1000);
    // Expired.
    await expectRefused(
      await sign({ env: "prod", sub: "expired-sub", exp: now - 600, iat: now - 1200 }),
      400,
      "ExpiredTokenException",
      "expired-sub",
    );
    // Not yet valid.
    await expectRefused(
      await sign({ env: "prod", sub: "nbf-sub", nbf: now + 3600 }),
      400,
      "InvalidIdentityToken",
      "nbf-sub",
    );
    // Wrong issuer.
    await expectRefused(
      await sign({ env: "prod", sub: "evil-iss", iss: `${issuer}-evil` }),
      400,
      "InvalidIdentityToken",
      "evil-iss",
    );
    // Wrong audience.
    await expectRefused(
      await sign({ env: "prod", sub: "wrong-aud", aud: "someone-else" }),
      400,
      "InvalidIdentityToken",
      "wrong-aud",
    );
    // alg: none.
    const unsecured = `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url.encode(
      JSON.stringify({ iss: issuer, aud: AUDIENCE, sub: "none-alg", env: "prod", exp: now + 600, iat: now }),
    )}.`;
    tokens.push(unsecured);
    await expectRefused(unsecured, 400, "InvalidIdentityToken", "none-alg");
    // HS256 keyed with the issuer's public key (the classic RS/HS confusion).
    const publicPem = await exportSPKI(rsa.publicKey);
    const confused = await new SignJWT({ env: "prod" })
      .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject("hs256-sub")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(publicPem));
    tokens.push(confused);
    await expectRefused(confused, 400, "InvalidIdentityToken", "hs256-sub");
    // Unknown kid (a key the issuer never published).
    await expectRefused(
      await sign({ env: "prod", sub: "unknown-kid" }, { key: stranger.privateKey, kid: "rsa-404" }),
      400,
      "InvalidIdentityToken",
      "unknown-kid",
    );
    // A known kid, but signed by another key.
    await expectRefused(
      await sign({ env: "prod", sub: "forged-sig" }, { key: stranger.privateKey, kid: "rsa-1" }),
      400,
      "InvalidIdentityToken",
      "forged-sig",
    );
    // Tampered claims: the payload of a genuine token changed, its signature kept.
    const genuine = await sign({ env: "prod", sub: "system:serviceaccount:agents:honest" });
    const [h, , s] = genuine.split(".");
    const forgedPayload = base64url.encode(
      JSON.stringify({
        iss: issuer,
        aud: AUDIENCE,
        sub: "system:serviceaccount:agents:admin",
        env: "prod",
        exp: now + 600,
      }),
    );
    const tampered = `${h}.${forgedPayload}.${s}`;
    tokens.push(tampered);
    await expectRefused(tampered, 400, "InvalidIdentityToken", "system:serviceaccount:agents:admin");
    // Valid signature, but the subject does not match the rule.
    await expectRefused(
      await sign({ env: "prod", sub: "system:serviceaccount:kube-system:root" }),
      403,
      "AccessDenied",
      "system:serviceaccount:kube-system:root",
    );
    // Valid signature and subject, but a claim condition fails (env must be prod*).
    await expectRefused(await sign({ env: "staging" }), 403, "AccessDenied", SUBJECT);
    // Valid token for "default", presented for connection "other": refused at the edge.
    await expectRefused(await sign({ env: "prod" }), 403, "AccessDenied", SUBJECT, otherRoleArn);
    // A revoked principal: the token is fine, the principal it maps to gets nothing.
    const revoked = "system:serviceaccount:agents:revoked";
    const rv = await dev.cli(["credentials", "revoke", "--principal", `k8s:${revoked}`, "--until", "1h"]);
    expect(rv.code, rv.stderr).toBe(0);
    await expectRefused(await sign({ env: "prod", sub: revoked }), 403, "AccessDenied", revoked);
    // Not a Tollgate role.
    const r = await assumeRaw(await sign({ env: "prod" }), "arn:aws:iam::123456789012:role/admin");
    expect(r.status).toBe(400);
    expect(r.code).toBe("InvalidParameterValue");
    expectations.push({
      requestId: r.requestId,
      errorCode: "InvalidParameterValue",
      principal: SUBJECT,
      connection: "",
    });
    // Garbage.
    await expectRefused("not-a-jwt", 400, "InvalidIdentityToken", "");
  }, 120_000);

  it("SDK v3 raises STS's exception classes", async () => {
    const sts = new STSClient({ endpoint: dev.edgeUrl, region: "us-east-1", maxAttempts: 1 });
    const now = Math.floor(Date.now() / 1000);
    const expired = await sign({ env: "prod", sub: "sdk-expired", exp: now - 60, iat: now - 120 });
    const err = await sts
      .send(
        new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: "x1", WebIdentityToken: expired }),
      )
      .catch((e: unknown) => e as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } });
    expect((err as Error).name).toBe("ExpiredTokenException");
    expectations.push({
      requestId: (err as { $metadata?: { requestId?: string } }).$metadata?.requestId ?? "",
      errorCode: "ExpiredTokenException",
      principal: "sdk-expired",
      connection: "default",
    });
    const bad = await sts
      .send(
        new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: "x2", WebIdentityToken: "x.y.z" }),
      )
      .catch((e: unknown) => e as Error);
    expect((bad as Error).name).toBe("InvalidIdentityTokenException");
    expectations.push({
      requestId: (bad as { $metadata?: { requestId?: string } }).$metadata?.requestId ?? "",
      errorCode: "InvalidIdentityToken",
      principal: "",
      connection: "default",
    });
  });

  it("records exactly one audit event per exchange, refused ones with the error and claimed subject", async () => {
    const all = await waitForEvents(dev, { operation: "AssumeRoleWithWebIdentity" }, expectations.length + 1, {
      timeoutMs: 30_000,
    });
    for (const x of expectations) {
      const matching = all.filter((e) => e.eventId === x.requestId);
      expect(matching, `event ${x.requestId} (${x.errorCode})`).toHaveLength(1);
      const e = matching[0] as AuditEvent;
      expect(e.eventName).toBe("AssumeRoleWithWebIdentity");
      expect(e.eventSource).toBe("sts.amazonaws.com");
      expect(e.errorCode ?? "").toBe(x.errorCode);
      expect(e.userIdentity?.principalId).toBe(x.principal);
      expect(e.tollgate?.connection).toBe(x.connection);
      expect(e.tollgate?.decision).toBe(x.errorCode === "" ? Decision.ALLOW : Decision.DENY);
    }
    // The error-code filter finds them too.
    const expired = await waitForEvents(dev, { errorCode: "ExpiredTokenException" }, 2);
    expect(expired.map((e) => e.userIdentity?.principalId).sort()).toEqual(["expired-sub", "sdk-expired"]);
    // No token ever reaches an audit event or a log line.
    const everything = all.map((e) => toJsonString(AuditEventSchema, e)).join("\n");
    const logs = dev.logs();
    for (const t of tokens) {
      expect(everything.includes(t)).toBe(false);
      expect(logs.includes(t)).toBe(false);
      // Not even the signature part (the header and payload of some are guessable).
      const sig = t.split(".")[2] ?? "";
      if (sig.length > 20) expect(logs.includes(sig)).toBe(false);
    }
  }, 60_000);
});

describe("service accounts", () => {
  it("an API key gets its own credential (credential_process format); deleted, it is refused and audited", async () => {
    const keyFile = join(tmp, "builder.key");
    let r = await dev.cli([
      "service-account",
      "create",
      "nightly-builder",
      "--connection",
      "default",
      "--ttl",
      "30m",
      "--api-key-file",
      keyFile,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    r = await dev.cli(["service-account", "list", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    expect(listed).toMatchObject({ name: "nightly-builder", connection: "default", principal: "sa:nightly-builder" });
    expect(String(listed.keyId)).toMatch(/^tgsk_[0-9a-f]{16}$/);
    expect(r.stdout).not.toMatch(/tgsk_[0-9a-f]{16}_/);

    // No admin token in this environment: the API key alone authenticates.
    const agentEnv = { TOLLGATE_ADMIN_TOKEN: "", TOLLGATE_HOME: tmp };
    const issue = (args: string[], file = keyFile) =>
      cliAs(["credentials", "issue", "--api-key-file", file, "--format", "credential-process", ...args], agentEnv);
    r = await issue([]);
    expect(r.code, r.stderr).toBe(0);
    const cred = JSON.parse(r.stdout) as {
      Version: number;
      AccessKeyId: string;
      SecretAccessKey: string;
      SessionToken: string;
      Expiration: string;
    };
    expect(cred.Version).toBe(1);
    expect(cred.AccessKeyId).toMatch(/^TGIA/);
    const ttlMs = Date.parse(cred.Expiration) - Date.now();
    expect(ttlMs).toBeGreaterThan(25 * 60_000);
    expect(ttlMs).toBeLessThanOrEqual(30 * 60_000 + 5000);
    const s3 = new S3Client({
      endpoint: dev.edgeUrl,
      region: "us-east-1",
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: {
        accessKeyId: cred.AccessKeyId,
        secretAccessKey: cred.SecretAccessKey,
        sessionToken: cred.SessionToken,
      },
    });
    await s3.send(new ListBucketsCommand({}));
    // The API key is no admin credential.
    const key = readFileSync(keyFile, "utf8").trim();
    r = await cliAs(["connection", "list"], { TOLLGATE_ADMIN_TOKEN: key, TOLLGATE_HOME: tmp });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Unauthenticated/);

    // Rotation: the old key stops working at once.
    const newKeyFile = join(tmp, "builder-2.key");
    r = await dev.cli(["service-account", "rotate-key", "nightly-builder", "--api-key-file", newKeyFile]);
    expect(r.code, r.stderr).toBe(0);
    const newKeyId = readFileSync(newKeyFile, "utf8").slice(0, 21);
    expect(newKeyId).not.toBe(listed.keyId);
    r = await issue([]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid API key/);
    // A revoked principal gets no credential, even with a valid key.
    r = await dev.cli(["credentials", "revoke", "--principal", "sa:nightly-builder", "--until", "2m"]);
    expect(r.code, r.stderr).toBe(0);
    r = await issue([], newKeyFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/revoked/);
    r = await dev.cli(["service-account", "delete", "nightly-builder"]);
    expect(r.code, r.stderr).toBe(0);
    r = await issue([], newKeyFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid API key/);
    // A key never issued (well-formed) is refused the same way.
    const forged = join(tmp, "forged.key");
    writeFileSync(forged, `tgsk_0123456789abcdef_${"A".repeat(43)}\n`);
    r = await cliAs(["credentials", "issue", "--api-key-file", forged], agentEnv);
    expect(r.code).toBe(1);

    const events = await waitForEvents(dev, { operation: "IssueServiceAccountCredential" }, 5);
    expect(events).toHaveLength(5);
    const ok = events.filter((e) => e.tollgate?.decision === Decision.ALLOW);
    expect(ok).toHaveLength(1);
    expect(ok[0]?.userIdentity?.principalId).toBe("sa:nightly-builder");
    expect(ok[0]?.tollgate?.connection).toBe("default");
    expect(ok[0]?.responseElements).toMatchObject({ accessKeyId: cred.AccessKeyId });
    const refused = events.filter((e) => e.tollgate?.decision === Decision.DENY);
    expect(refused.map((e) => `${e.errorCode}/${e.userIdentity?.principalId}`).sort()).toEqual(
      [
        "AccessDenied/sa:nightly-builder",
        `InvalidClientTokenId/${String(listed.keyId)}`,
        `InvalidClientTokenId/${newKeyId}`,
        "InvalidClientTokenId/tgsk_0123456789abcdef",
      ].sort(),
    );
    const s3Events = await waitForEvents(dev, { principal: "sa:nightly-builder", service: "s3" }, 1);
    expect(s3Events.map((e) => e.eventName)).toEqual(["ListBuckets"]);
    for (const e of [...events, ...s3Events]) expect(toJsonString(AuditEventSchema, e)).not.toContain(key);
    expect(dev.logs().includes(key)).toBe(false);
  }, 120_000);
});
