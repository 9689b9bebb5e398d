import { createPublicKey, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { auditAlertSubject, type ControlPlaneClient, createControlPlaneClient, openSessionToken } from "@tollgate/sdk";
import { Redis } from "ioredis";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BREAK_GLASS_ALERT_SOURCE, ControlPlane } from "./control-plane.js";
import type { Logger } from "./logger.js";
import { loadOrCreateState } from "./state-store.js";

const NATS_URL = "nats://127.0.0.1:4222";
const REDIS_URL = "redis://127.0.0.1:6379";
const id = randomBytes(4).toString("hex");
const redisPrefix = `tollgate-test:${id}:`;
const stream = `TGID_${id}`;
const subjectPrefix = `tgid_${id}`;
const CLIENT_ID = "tollgate-cli";

const logLines: { level: string; obj: object; msg?: string }[] = [];
const logger: Logger = {
  debug: (obj, msg) => logLines.push({ level: "debug", obj, msg }),
  info: (obj, msg) => logLines.push({ level: "info", obj, msg }),
  warn: (obj, msg) => logLines.push({ level: "warn", obj, msg }),
  error: (obj, msg) => logLines.push({ level: "error", obj, msg }),
};

let home: string;
let cp: ControlPlane;
let adminToken: string;
let admin: ControlPlaneClient;
let nc: NatsConnection;
let idp: http.Server;
let issuer: string;
let signingKey: CryptoKey;
let publicJwk: JWK;
let publicPem: string;
const KID = "idp-key-1";
const issuedTokens: string[] = [];

async function expectCode(p: Promise<unknown>, code: Code): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    const ce = ConnectError.from(err);
    expect(Code[ce.code], ce.message).toBe(Code[code]);
    return ce;
  }
  throw new Error(`expected ${Code[code]}, call succeeded`);
}

interface TokenOptions {
  sub?: string;
  claims?: Record<string, unknown>;
  aud?: string;
  iss?: string;
  expSec?: number;
  nbfSec?: number;
  kid?: string;
  key?: CryptoKey | Uint8Array;
  alg?: string;
}

async function idToken(o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ email: "alice@example.com", groups: ["tollgate-auditors"], ...o.claims })
    .setProtectedHeader({ alg: o.alg ?? "ES256", kid: o.kid ?? KID })
    .setIssuer(o.iss ?? issuer)
    .setAudience(o.aud ?? CLIENT_ID)
    .setSubject(o.sub ?? "alice-sub")
    .setIssuedAt(now)
    .setExpirationTime(o.expSec ?? now + 600);
  if (o.nbfSec !== undefined) jwt.setNotBefore(o.nbfSec);
  const token = await jwt.sign(o.key ?? signingKey);
  issuedTokens.push(token);
  return token;
}

function b64url(s: string): string {
  return Buffer.from(s).toString("base64url");
}

function sessionClient(token: string): ControlPlaneClient {
  return createControlPlaneClient({ baseUrl: cp.url, token });
}

async function login(
  groups: string[],
  email = "alice@example.com",
): Promise<{ client: ControlPlaneClient; token: string }> {
  const res = await createControlPlaneClient({ baseUrl: cp.url }).identity.login({
    idToken: await idToken({ claims: { groups, email }, sub: `sub-${email}` }),
  });
  issuedTokens.push(res.sessionToken);
  return { client: sessionClient(res.sessionToken), token: res.sessionToken };
}

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: "ES256", use: "sig" };
  publicPem = createPublicKey({ key: publicJwk as never, format: "jwk" })
    .export({ type: "spki", format: "pem" })
    .toString();
  // A real HTTP issuer: discovery document and JWKS.
  idp = http.createServer((req, res) => {
    if (req.url === "/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    } else if (req.url === "/jwks") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [publicJwk] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;

  home = await mkdtemp(join(tmpdir(), "tollgate-id-"));
  cp = new ControlPlane({
    home,
    natsUrl: NATS_URL,
    redisUrl: REDIS_URL,
    redisPrefix,
    auditStream: stream,
    auditSubjectPrefix: subjectPrefix,
    port: 0,
    logger,
    oidc: {
      issuer,
      clientId: CLIENT_ID,
      roleMap: [
        { claim: "groups", value: "tollgate-admins", roles: ["admin"] },
        { claim: "groups", value: "tollgate-auditors", roles: ["auditor"] },
        { claim: "groups", value: "ci-agents", roles: ["agent"], connections: ["alpha"] },
      ],
    },
  });
  await cp.start();
  adminToken = (await readFile(join(home, "admin.token"), "utf8")).trim();
  admin = createControlPlaneClient({ baseUrl: cp.url, token: adminToken });
  nc = await connect({ servers: NATS_URL });
  for (const name of ["alpha", "beta"]) {
    await admin.connections.createConnection({
      connection: { name, region: "us-east-1", upstreamAccessKeyId: "AKIDEXAMPLE" },
      upstreamSecretAccessKey: "secret",
    });
  }
});

afterAll(async () => {
  await cp?.close();
  await new Promise((r) => idp?.close(r));
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  if (nc !== undefined) {
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    await nc.close();
  }
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe("break-glass admin token", () => {
  it("is audited on every use: logged, an alert on NATS and in ListAlerts", async () => {
    const sub = nc.subscribe(auditAlertSubject(subjectPrefix, BREAK_GLASS_ALERT_SOURCE), { max: 1, timeout: 10_000 });
    await nc.flush();
    await admin.connections.getConnection({ name: "alpha" });
    let published: { kind?: string; edge?: string; detail?: string } | undefined;
    for await (const msg of sub) published = msg.json();
    expect(published?.kind).toBe("break-glass");
    expect(published?.edge).toBe("control-plane");
    expect(published?.detail).toContain("tollgate.connection.v1.ConnectionService/GetConnection");

    const listed = await admin.audit.listAlerts({ edge: BREAK_GLASS_ALERT_SOURCE, pageSize: 1000 });
    expect(listed.alerts.some((a) => a.kind === "break-glass" && a.detail.endsWith("/GetConnection"))).toBe(true);
    expect(listed.alerts.some((a) => a.detail.endsWith("/CreateConnection"))).toBe(true);
    const logged = logLines.filter((l) => (l.obj as { event?: string }).event === "admin_token_used");
    expect(logged.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(logLines)).not.toContain(adminToken);
  });

  it("a session of a person is not break-glass and raises no alert", async () => {
    const { client } = await login(["tollgate-admins"], "root@example.com");
    const before = (await admin.audit.listAlerts({ edge: BREAK_GLASS_ALERT_SOURCE, pageSize: 1000 })).alerts.length;
    await client.connections.listConnections({});
    await client.connections.listConnections({});
    const after = (await admin.audit.listAlerts({ edge: BREAK_GLASS_ALERT_SOURCE, pageSize: 1000 })).alerts.length;
    // Only the two listAlerts calls of the break-glass token itself.
    expect(after - before).toBe(1);
  });
});

describe("OIDC login and roles", () => {
  it("maps groups to roles and returns a session that WhoAmI describes", async () => {
    const anon = createControlPlaneClient({ baseUrl: cp.url });
    const config = await anon.identity.getLoginConfig({});
    expect(config.oidcIssuer).toBe(issuer);
    expect(config.oidcClientId).toBe(CLIENT_ID);
    const res = await anon.identity.login({
      idToken: await idToken({ claims: { groups: ["tollgate-auditors", "x"] } }),
    });
    expect(res.session?.principal).toBe("oidc:alice@example.com");
    expect(res.session?.roles).toEqual(["auditor"]);
    const expMs = Number(res.session?.expireTime?.seconds) * 1000;
    // Capped by the ID token (10 min), not the 8 h default.
    expect(expMs).toBeLessThanOrEqual(Date.now() + 600_000 + 1000);
    const who = await sessionClient(res.sessionToken).identity.whoAmI({});
    expect(who.session?.principal).toBe("oidc:alice@example.com");
    expect(who.session?.roles).toEqual(["auditor"]);
    expect(who.session?.authMethod).toBe("oidc");
    expect(who.session?.idpIssuer).toBe(issuer);
    expect(who.session?.idpSubject).toBe("alice-sub");
    const adminWho = await admin.identity.whoAmI({});
    expect(adminWho.session?.kind).toBe("break-glass");
  });

  it("auditor reads audit but is refused admin and agent methods", async () => {
    const { client } = await login(["tollgate-auditors"]);
    await client.audit.queryEvents({});
    await client.audit.listAlerts({});
    await client.edge.listEdges({});
    const denied = await expectCode(
      client.connections.createConnection({ connection: { name: "gamma" } }),
      Code.PermissionDenied,
    );
    expect(denied.rawMessage).toContain("admin");
    await expectCode(client.connections.listConnections({}), Code.PermissionDenied);
    await expectCode(
      client.credentials.issueCredential({ principal: "x", connection: "alpha" }),
      Code.PermissionDenied,
    );
    await expectCode(client.edge.getEdgeConfig({}), Code.PermissionDenied);
  });

  it("admin manages connections but cannot read edge configuration", async () => {
    const { client } = await login(["tollgate-admins"], "bob@example.com");
    await client.connections.createConnection({ connection: { name: "gamma", region: "eu-west-1" } });
    await client.connections.deleteConnection({ name: "gamma" });
    const cred = await client.credentials.issueCredential({ principal: "someone-else", connection: "beta" });
    expect(cred.principal).toBe("someone-else");
    await expectCode(client.edge.getEdgeConfig({}), Code.PermissionDenied);
  });

  it("agent issues credentials only for itself and only on its connections", async () => {
    const { client } = await login(["ci-agents"], "bot@example.com");
    const cred = await client.credentials.issueCredential({ connection: "alpha", ttlSeconds: 300n });
    expect(cred.principal).toBe("oidc:bot@example.com");
    const { state } = await loadOrCreateState(home);
    const keys = new Map(state.credentialKeys.map((k) => [k.keyId, k.key]));
    expect(openSessionToken(cred.sessionToken, keys).principal).toBe("oidc:bot@example.com");
    const same = await client.credentials.issueCredential({ principal: "oidc:bot@example.com", connection: "alpha" });
    expect(same.principal).toBe("oidc:bot@example.com");
    await expectCode(
      client.credentials.issueCredential({ principal: "admin", connection: "alpha" }),
      Code.PermissionDenied,
    );
    await expectCode(client.credentials.issueCredential({ connection: "beta" }), Code.PermissionDenied);
    await expectCode(client.audit.queryEvents({}), Code.PermissionDenied);
    await expectCode(client.connections.createConnection({ connection: { name: "x" } }), Code.PermissionDenied);
  });

  it("refuses a login that maps to no role", async () => {
    const anon = createControlPlaneClient({ baseUrl: cp.url });
    await expectCode(
      anon.identity.login({ idToken: await idToken({ claims: { groups: ["other"] } }) }),
      Code.PermissionDenied,
    );
  });

  it("logout revokes the session; a tampered session token is refused", async () => {
    const { client, token } = await login(["tollgate-auditors"]);
    await client.identity.whoAmI({});
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p as string, "base64url").toString()) as { roles: string[] };
    payload.roles = ["admin"];
    const forged = `${h}.${b64url(JSON.stringify(payload))}.${s}`;
    await expectCode(sessionClient(forged).connections.listConnections({}), Code.Unauthenticated);
    await client.identity.logout({});
    const e = await expectCode(client.identity.whoAmI({}), Code.Unauthenticated);
    expect(e.rawMessage).toContain("revoked");
  });
});

describe("hostile ID tokens at Login", () => {
  const refused = async (token: string, why: RegExp): Promise<void> => {
    const e = await expectCode(
      createControlPlaneClient({ baseUrl: cp.url }).identity.login({ idToken: token }),
      Code.Unauthenticated,
    );
    expect(e.rawMessage).toMatch(why);
  };

  it("expired", async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(await idToken({ expSec: now - 3600 }), /expired/);
  });

  it("not yet valid", async () => {
    await refused(await idToken({ nbfSec: Math.floor(Date.now() / 1000) + 3600 }), /claim nbf/);
  });

  it("wrong audience", async () => {
    await refused(await idToken({ aud: "another-client" }), /claim aud/);
  });

  it("wrong issuer", async () => {
    await refused(await idToken({ iss: "https://evil.example.com" }), /claim iss/);
  });

  it("alg none", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(
      JSON.stringify({
        iss: issuer,
        aud: CLIENT_ID,
        sub: "x",
        email: "evil@example.com",
        groups: ["tollgate-admins"],
        iat: now,
        exp: now + 600,
      }),
    )}.`;
    issuedTokens.push(token);
    await refused(token, /algorithm not allowed/);
  });

  it("HS256 signed with the issuer's public key", async () => {
    await refused(
      await idToken({
        alg: "HS256",
        key: new TextEncoder().encode(publicPem),
        claims: { groups: ["tollgate-admins"] },
      }),
      /algorithm not allowed/,
    );
    const jwkText = new TextEncoder().encode(JSON.stringify(publicJwk));
    await refused(await idToken({ alg: "HS256", key: jwkText }), /algorithm not allowed/);
  });

  it("unknown kid (another key)", async () => {
    const other = await generateKeyPair("ES256");
    await refused(await idToken({ kid: "not-published", key: other.privateKey }), /key the issuer does not publish/);
  });

  it("tampered claims", async () => {
    const token = await idToken();
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(Buffer.from(p as string, "base64url").toString()) as { groups: string[] };
    claims.groups = ["tollgate-admins"];
    const tampered = `${h}.${b64url(JSON.stringify(claims))}.${s}`;
    issuedTokens.push(tampered);
    await refused(tampered, /signature is not valid/);
  });

  it("signed by another key under the published kid", async () => {
    const other = await generateKeyPair("ES256");
    await refused(await idToken({ key: other.privateKey }), /signature is not valid/);
  });

  it("nonce mismatch", async () => {
    const e = await expectCode(
      createControlPlaneClient({ baseUrl: cp.url }).identity.login({
        idToken: await idToken({ claims: { nonce: "n-1" } }),
        nonce: "n-2",
      }),
      Code.Unauthenticated,
    );
    expect(e.rawMessage).toMatch(/nonce/);
  });

  it("garbage", async () => {
    await refused("not-a-jwt", /malformed/);
  });

  it("logs each refusal with a reason code and never a token", () => {
    const refusals = logLines.filter((l) => (l.obj as { event?: string }).event === "login_refused");
    const reasons = new Set(refusals.map((l) => (l.obj as { reason?: string }).reason));
    for (const r of [
      "ERR_ID_TOKEN_EXPIRED",
      "ERR_ID_TOKEN_CLAIM",
      "ERR_ID_TOKEN_ALG",
      "ERR_ID_TOKEN_KEY",
      "ERR_ID_TOKEN_SIGNATURE",
      "ERR_ID_TOKEN_NONCE",
      "ERR_ID_TOKEN_MALFORMED",
    ]) {
      expect(reasons.has(r), r).toBe(true);
    }
    const all = JSON.stringify(logLines);
    for (const t of issuedTokens) {
      for (const part of t.split(".").filter((x) => x.length > 20)) expect(all).not.toContain(part);
    }
  });
});
