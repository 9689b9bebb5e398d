/**
 * Workload identity with a real OIDC provider (`oidc-provider`, on a random port): a client
 * gets a JWT access token by `client_credentials` with a resource indicator, writes it to a
 * file, and the stock AWS SDK v3 default chain and the `aws` CLI exchange it at a `tollgate dev`
 * edge (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN + AWS_ENDPOINT_URL), then make audited calls.
 * A service account's API key works as `credential_process` for the `aws` CLI.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { AuditEventSchema, Decision } from "@tollgate/proto";
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForEvents } from "./support/audit.js";
import { CLI, type DevInstance, REPO_ROOT, runProcess, startDev } from "./support/dev-instance.js";

const RESOURCE = "urn:tollgate:edge";
const CLIENT_ID = "agent-deployer";
const CLIENT_SECRET = "a-client-secret-for-tests-only-0123456789";
const ROLE_ARN = "arn:aws:iam::123456789012:role/tollgate/default";
const PRINCIPAL = `oidc:${CLIENT_ID}`;

let dev: DevInstance;
let idp: Server;
let issuer: string;
let tmp: string;
let tokenFile: string;
let token: string;

type ProviderCtor = new (
  issuer: string,
  configuration: Record<string, unknown>,
) => { callback(): (req: IncomingMessage, res: ServerResponse) => void };

/** The `aws` CLI with no ambient AWS configuration. */
function awsEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("AWS_")) delete env[k];
  return {
    ...env,
    AWS_CONFIG_FILE: join(tmp, "none.config"),
    AWS_SHARED_CREDENTIALS_FILE: join(tmp, "none.credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    ...extra,
  };
}

async function fetchAccessToken(): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", resource: RESOURCE, scope: "aws" }).toString(),
  });
  const body = (await res.json()) as { access_token?: string; token_type?: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.access_token ?? "";
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tollgate-oidc-"));
  // The issuer must be known before the provider exists: listen first, then attach it.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503);
    res.end();
  };
  idp = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: "idp-rs256", alg: "RS256", use: "sig" };
  // No type declarations ship with oidc-provider 8: load it untyped.
  const specifier: string = "oidc-provider";
  const Provider = ((await import(specifier)) as { default: ProviderCtor }).default;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
      },
    ],
    jwks: { keys: [signingKey] },
    scopes: ["aws"],
    ttl: { ClientCredentials: 15 * 60 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource !== RESOURCE) throw new Error("unknown resource");
          return {
            scope: "aws",
            audience: RESOURCE,
            accessTokenTTL: 15 * 60,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },
  });
  handler = provider.callback();

  dev = await startDev();
  // No --jwks-url: the edge's control plane discovers it from the issuer.
  const r = await dev.cli([
    "trust",
    "create",
    "deployers",
    "--connection",
    "default",
    "--issuer",
    issuer,
    "--audience",
    RESOURCE,
    "--subject",
    "agent-*",
    "--principal",
    "oidc:{client_id}",
    "--max-ttl",
    "1h",
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(`role ARN: ${ROLE_ARN}`);

  token = await fetchAccessToken();
  tokenFile = join(tmp, "web-identity-token");
  writeFileSync(tokenFile, token, { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  await dev?.stop();
  await new Promise<void>((r) => (idp ? idp.close(() => r()) : r()));
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe("a token from oidc-provider", () => {
  it("is a JWT access token signed with the provider's JWKS key", () => {
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "RS256", kid: "idp-rs256" });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: issuer, aud: RESOURCE, sub: CLIENT_ID, client_id: CLIENT_ID });
  });

  it("works with the AWS SDK v3 default chain (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ENDPOINT_URL)", async () => {
    const r = await runProcess(
      process.execPath,
      [join(REPO_ROOT, "test", "support", "web-identity-agent.mjs"), "oidc-sdk-bucket"],
      awsEnv({
        AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
        AWS_ROLE_ARN: ROLE_ARN,
        AWS_ROLE_SESSION_NAME: "sdk-agent",
        AWS_ENDPOINT_URL: dev.edgeUrl,
        AWS_REGION: "us-east-1",
      }),
      undefined,
      120_000,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as {
      buckets: string[];
      tables: string[];
      accessKeyId: string;
      expiration: string;
    };
    expect(out.buckets).toContain("oidc-sdk-bucket");
    expect(out.accessKeyId).toMatch(/^TGIA/);
    // Capped by the access token's 15 minutes.
    expect(Date.parse(out.expiration)).toBeLessThanOrEqual(((decodeJwt(token).exp as number) + 1) * 1000);

    // Each client (S3, DynamoDB) runs its own web-identity provider: one exchange each.
    const events = await waitForEvents(dev, { principal: PRINCIPAL }, 5);
    const exchange = events.filter(
      (e) => e.eventName === "AssumeRoleWithWebIdentity" && e.requestParameters?.roleSessionName === "sdk-agent",
    );
    expect(exchange).toHaveLength(2);
    const issuedKeys = new Set<string>();
    for (const e of exchange) {
      expect(e.tollgate?.decision).toBe(Decision.ALLOW);
      expect(e.responseElements).toMatchObject({
        provider: issuer,
        audience: RESOURCE,
        subjectFromWebIdentityToken: CLIENT_ID,
      });
      issuedKeys.add(String((e.responseElements?.credentials as { accessKeyId?: string } | undefined)?.accessKeyId));
    }
    expect(issuedKeys.has(out.accessKeyId)).toBe(true);
    const calls = events.filter((e) => e.eventName !== "AssumeRoleWithWebIdentity");
    expect(calls.map((e) => e.eventName).sort()).toEqual(["CreateBucket", "ListBuckets", "ListTables"]);
    for (const e of calls) {
      expect(issuedKeys.has(e.userIdentity?.accessKeyId ?? "")).toBe(true);
      expect(e.tollgate?.decision).toBe(Decision.ALLOW);
      expect(e.tollgate?.connection).toBe("default");
    }
  }, 180_000);

  it("works with `aws sts assume-role-with-web-identity` and a web_identity_token_file profile", async () => {
    const assumed = await runProcess(
      "aws",
      [
        "sts",
        "assume-role-with-web-identity",
        "--role-arn",
        ROLE_ARN,
        "--role-session-name",
        "cli-direct",
        "--web-identity-token",
        `file://${tokenFile}`,
        "--output",
        "json",
      ],
      awsEnv({ AWS_ENDPOINT_URL: dev.edgeUrl, AWS_DEFAULT_REGION: "us-east-1" }),
      undefined,
      120_000,
    );
    expect(assumed.code, assumed.stderr).toBe(0);
    const out = JSON.parse(assumed.stdout) as {
      Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
      SubjectFromWebIdentityToken: string;
      AssumedRoleUser: { Arn: string };
      Provider: string;
      Audience: string;
    };
    expect(out.Credentials.AccessKeyId).toMatch(/^TGIA/);
    expect(out.SubjectFromWebIdentityToken).toBe(CLIENT_ID);
    expect(out.AssumedRoleUser.Arn).toBe("arn:aws:sts::123456789012:assumed-role/default/cli-direct");
    expect(out.Provider).toBe(issuer);
    expect(out.Audience).toBe(RESOURCE);

    // A profile, as an operator would write it: nothing Tollgate-specific but the endpoint.
    const config = join(tmp, "aws.config");
    writeFileSync(
      config,
      [
        "[profile tollgate]",
        `role_arn = ${ROLE_ARN}`,
        `web_identity_token_file = ${tokenFile}`,
        "role_session_name = cli-profile",
        "region = us-east-1",
        `endpoint_url = ${dev.edgeUrl}`,
        "",
      ].join("\n"),
    );
    const listed = await runProcess(
      "aws",
      ["dynamodb", "list-tables", "--profile", "tollgate", "--output", "json"],
      awsEnv({ AWS_CONFIG_FILE: config }),
      undefined,
      120_000,
    );
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toHaveProperty("TableNames");

    const events = await waitForEvents(dev, { principal: PRINCIPAL, service: "sts" }, 3);
    const sessions = events
      .filter((e) => e.eventName === "AssumeRoleWithWebIdentity")
      .map((e) => e.requestParameters?.roleSessionName);
    expect(sessions).toContain("cli-direct");
    expect(sessions).toContain("cli-profile");
    const ddb = await waitForEvents(dev, { principal: PRINCIPAL, operation: "ListTables" }, 2);
    expect(ddb.length).toBeGreaterThanOrEqual(2);
    // Audited calls never carry the token.
    for (const e of [...events, ...ddb]) expect(toJsonString(AuditEventSchema, e)).not.toContain(token);
  }, 240_000);

  it("a service account's API key works as credential_process for the aws CLI", async () => {
    const keyFile = join(tmp, "sa.key");
    const created = await dev.cli([
      "service-account",
      "create",
      "cli-agent",
      "--connection",
      "default",
      "--api-key-file",
      keyFile,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const config = join(tmp, "aws-sa.config");
    writeFileSync(
      config,
      [
        "[profile sa]",
        `credential_process = ${process.execPath} ${CLI} credentials issue --api-key-file ${keyFile} --format credential-process --api ${dev.apiUrl}`,
        "region = us-east-1",
        `endpoint_url = ${dev.edgeUrl}`,
        "",
      ].join("\n"),
    );
    const r = await runProcess(
      "aws",
      ["s3api", "list-buckets", "--profile", "sa", "--output", "json"],
      awsEnv({ AWS_CONFIG_FILE: config, TOLLGATE_HOME: tmp, TOLLGATE_ADMIN_TOKEN: "" }),
      undefined,
      120_000,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty("Buckets");
    const events = await waitForEvents(dev, { principal: "sa:cli-agent" }, 2);
    expect(events.map((e) => e.eventName).sort()).toEqual(["IssueServiceAccountCredential", "ListBuckets"]);
    for (const e of events) expect(e.tollgate?.decision).toBe(Decision.ALLOW);
  }, 180_000);
});
