import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { EdgeService, GetEdgeConfigRequestSchema } from "@tollgate/proto";
import {
  type ControlPlaneClient,
  createControlPlaneClient,
  type EdgeSigningKey,
  generateEdgeSigningKey,
  signEdgeRequest,
} from "@tollgate/sdk";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "./control-plane.js";
import { silentLogger } from "./logger.js";

const NATS_URL = "nats://127.0.0.1:4222";
const REDIS_URL = "redis://127.0.0.1:6379";
const id = randomBytes(4).toString("hex");
const redisPrefix = `tollgate-test:${id}:`;
const stream = `TGTEST_${id}`;

let home: string;
let cp: ControlPlane;
let admin: ControlPlaneClient;
let anonymous: ControlPlaneClient;

async function expectCode(p: Promise<unknown>, code: Code): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    const ce = ConnectError.from(err);
    expect(Code[ce.code]).toBe(Code[code]);
    return ce;
  }
  throw new Error(`expected ${Code[code]}, call succeeded`);
}

async function enrolled(name: string, labels: Record<string, string> = {}): Promise<EdgeSigningKey> {
  const { token } = await admin.edgeAdmin.createEnrollmentToken({ edgeName: name, labels });
  const key = generateEdgeSigningKey();
  await anonymous.edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem });
  return key;
}

function signed(name: string, key: EdgeSigningKey): ControlPlaneClient {
  return createControlPlaneClient({ baseUrl: cp.url, edgeAuth: { edgeName: name, key } });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tollgate-enroll-"));
  cp = new ControlPlane({
    home,
    natsUrl: NATS_URL,
    redisUrl: REDIS_URL,
    redisPrefix,
    auditStream: stream,
    auditSubjectPrefix: `tgtest_${id}`,
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger,
  });
  await cp.start();
  admin = createControlPlaneClient({
    baseUrl: cp.url,
    token: (await readFile(join(home, "admin.token"), "utf8")).trim(),
  });
  anonymous = createControlPlaneClient({ baseUrl: cp.url });
});

afterAll(async () => {
  await cp?.close();
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  const nc = await connect({ servers: NATS_URL });
  await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
  await nc.close();
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe("edge enrollment", () => {
  it("consumes a token once, then the edge's signed requests are accepted and count as heartbeats", async () => {
    const { token, expireTimeMs } = await admin.edgeAdmin.createEnrollmentToken({
      edgeName: "edge-a",
      labels: { vpc: "vpc-123", region: "eu-west-1" },
      ttlSeconds: 600n,
    });
    expect(token).toMatch(/^tgn_[A-Za-z0-9_-]{43}$/);
    expect(Number(expireTimeMs)).toBeGreaterThan(Date.now() + 590_000);
    const key = generateEdgeSigningKey();
    const res = await anonymous.edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem, edgeName: "edge-a" });
    expect(res.keyId).toBe(key.keyId);
    expect(res.edge?.labels).toEqual({ region: "eu-west-1", vpc: "vpc-123" });
    // Single use: the same token again is refused, even with another key.
    const again = generateEdgeSigningKey();
    await expectCode(
      anonymous.edgeEnrollment.enroll({ token, publicKeyPem: again.publicKeyPem }),
      Code.PermissionDenied,
    );

    const before = (await admin.edge.listEdges({})).edges.find((e) => e.name === "edge-a");
    expect(before?.status).toBe("stale");
    expect(before?.lastHeartbeatMs).toBe(0n);
    const config = await signed("edge-a", key).edge.getEdgeConfig({ edgeName: "edge-a" });
    expect(config.credentialKeys.length).toBeGreaterThan(0);
    const after = (await admin.edge.listEdges({})).edges.find((e) => e.name === "edge-a");
    expect(after?.status).toBe("healthy");
    expect(Number(after?.lastHeartbeatMs)).toBeGreaterThan(Date.now() - 10_000);
    expect(after?.keyIds).toEqual([key.keyId]);
    // The key is also registered for checkpoint verification.
    expect((await admin.edge.listEdges({})).keys.map((k) => k.keyId)).toContain(key.keyId);
  });

  it("refuses tokens that are unknown, expired, or for another name, and keys that are not Ed25519", async () => {
    const key = generateEdgeSigningKey();
    await expectCode(
      anonymous.edgeEnrollment.enroll({ token: "tgn_nope", publicKeyPem: key.publicKeyPem }),
      Code.PermissionDenied,
    );
    const { token } = await admin.edgeAdmin.createEnrollmentToken({ edgeName: "edge-b", ttlSeconds: 60n });
    await expectCode(anonymous.edgeEnrollment.enroll({ token, publicKeyPem: "not a key" }), Code.InvalidArgument);
    // A bad key did not burn the token; a wrong name does.
    await expectCode(
      anonymous.edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem, edgeName: "edge-z" }),
      Code.PermissionDenied,
    );
    await expectCode(
      anonymous.edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem, edgeName: "edge-b" }),
      Code.PermissionDenied,
    );
    // Expiry: Redis drops the token with its TTL.
    const short = await admin.edgeAdmin.createEnrollmentToken({ edgeName: "edge-c", ttlSeconds: 60n });
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${redisPrefix}edge-enroll:*`);
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) await redis.pexpire(k, 1);
    } finally {
      await redis.quit();
    }
    await new Promise((r) => setTimeout(r, 20));
    await expectCode(
      anonymous.edgeEnrollment.enroll({ token: short.token, publicKeyPem: key.publicKeyPem }),
      Code.PermissionDenied,
    );
    // Only admins create tokens.
    await expectCode(anonymous.edgeAdmin.createEnrollmentToken({ edgeName: "x" }), Code.Unauthenticated);
    await expectCode(
      admin.edgeAdmin.createEnrollmentToken({ edgeName: "x", labels: { "bad key!": "v" } }),
      Code.InvalidArgument,
    );
  });

  it("refuses bad signatures, unknown keys, skewed timestamps, replays and admin methods", async () => {
    const key = await enrolled("edge-d");
    const other = generateEdgeSigningKey();
    await expectCode(signed("edge-d", other).edge.getEdgeConfig({}), Code.Unauthenticated);
    await expectCode(signed("edge-nobody", key).edge.getEdgeConfig({}), Code.Unauthenticated);
    // An enrolled edge may not call admin services.
    await expectCode(signed("edge-d", key).connections.listConnections({}), Code.PermissionDenied);
    await expectCode(signed("edge-d", key).edgeAdmin.revokeEdge({ edgeName: "edge-a" }), Code.PermissionDenied);

    // Hand-made signatures: skew and replay.
    const procedure = `/${EdgeService.typeName}/${EdgeService.method.getEdgeConfig.name}`;
    const body = toBinary(GetEdgeConfigRequestSchema, {
      $typeName: "tollgate.edge.v1.GetEdgeConfigRequest",
      edgeName: "",
    });
    const call = (headers: Record<string, string>) =>
      createClient(
        EdgeService,
        createGrpcTransport({
          baseUrl: cp.url,
          interceptors: [
            (next) => async (req) => {
              for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
              return await next(req);
            },
          ],
        }),
      ).getEdgeConfig({});
    const skewed = signEdgeRequest(key, "edge-d", procedure, body, Date.now() - 6 * 60_000);
    await expectCode(call(skewed), Code.Unauthenticated);
    const fresh = signEdgeRequest(key, "edge-d", procedure, body);
    await call(fresh);
    await expectCode(call(fresh), Code.Unauthenticated);
    // A signature over another body does not verify.
    const otherBody = toBinary(GetEdgeConfigRequestSchema, {
      $typeName: "tollgate.edge.v1.GetEdgeConfigRequest",
      edgeName: "someone-else",
    });
    await expectCode(call(signEdgeRequest(key, "edge-d", procedure, otherBody)), Code.Unauthenticated);
  });

  it("a revoked edge is refused; re-enrolling needs a new key", async () => {
    const key = await enrolled("edge-e", { region: "us-east-2" });
    const edge = signed("edge-e", key);
    await edge.edge.getEdgeConfig({});
    const res = await admin.edgeAdmin.revokeEdge({ edgeName: "edge-e" });
    expect(res.edge?.status).toBe("revoked");
    await expectCode(edge.edge.getEdgeConfig({}), Code.PermissionDenied);
    const listed = (await admin.edge.listEdges({})).edges.find((e) => e.name === "edge-e");
    expect(listed?.status).toBe("revoked");
    expect(listed?.keyIds).toEqual([key.keyId]);
    await expectCode(admin.edgeAdmin.revokeEdge({ edgeName: "edge-unknown" }), Code.NotFound);

    const { token } = await admin.edgeAdmin.createEnrollmentToken({ edgeName: "edge-e" });
    await expectCode(anonymous.edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem }), Code.PermissionDenied);
    const fresh = await enrolled("edge-e");
    await signed("edge-e", fresh).edge.getEdgeConfig({});
    await expectCode(edge.edge.getEdgeConfig({}), Code.PermissionDenied);
  });
});

describe("credential revocation", () => {
  it("lists, revokes by credential id, access key id and principal, and tells edges", async () => {
    await admin.connections.createConnection({
      connection: { name: "default", upstreamAccessKeyId: "AKIDEXAMPLE" },
      upstreamSecretAccessKey: "secret",
      allowReplace: true,
    });
    const a1 = await admin.credentials.issueCredential({ principal: "alice", connection: "default" });
    const a2 = await admin.credentials.issueCredential({ principal: "alice", connection: "default" });
    const b1 = await admin.credentials.issueCredential({ principal: "bob", connection: "default" });
    const key = await enrolled("edge-f");
    const edge = signed("edge-f", key);
    const rev0 = (await edge.edge.getEdgeConfig({})).revision;

    const listed = await admin.credentials.listCredentials({ principal: "alice" });
    expect(listed.credentials.map((c) => c.credentialId).sort()).toEqual([a1.credentialId, a2.credentialId].sort());
    expect(listed.credentials.every((c) => !c.revoked)).toBe(true);

    const byAkid = await admin.credentials.revokeCredential({ accessKeyId: b1.accessKeyId });
    expect(byAkid.credential?.credentialId).toBe(b1.credentialId);
    const byId = await admin.credentials.revokeCredential({ credentialId: a1.credentialId });
    expect(byId.credential?.principal).toBe("alice");
    await expectCode(admin.credentials.revokeCredential({ credentialId: "nope" }), Code.NotFound);
    await expectCode(admin.credentials.revokeCredential({}), Code.InvalidArgument);

    const config = await edge.edge.getEdgeConfig({});
    expect(config.revision).toBeGreaterThan(rev0);
    const revokedIds = config.revocations.map((r) => r.credentialId);
    expect(revokedIds).toContain(b1.credentialId);
    expect(revokedIds).toContain(a1.credentialId);
    expect(revokedIds).not.toContain(a2.credentialId);
    const b1Rev = config.revocations.find((r) => r.credentialId === b1.credentialId);
    expect(Number(b1Rev?.untilMs)).toBe(Number(b1.expireTime?.seconds) * 1000);

    const until = Date.now() + 3_600_000;
    const p = await admin.credentials.revokePrincipal({ principal: "alice", until: timestampFromMs(until) });
    expect(Number(p.revocation?.until?.seconds)).toBe(Math.floor(until / 1000));
    const after = await edge.edge.getEdgeConfig({});
    expect(after.revocations.find((r) => r.principal === "alice")?.untilMs).toBe(BigInt(until));
    // A revoked principal gets no new credentials; others still do.
    await expectCode(admin.credentials.issueCredential({ principal: "alice" }), Code.PermissionDenied);
    await admin.credentials.issueCredential({ principal: "carol" });
    const all = await admin.credentials.listCredentials({});
    expect(all.credentials.find((c) => c.credentialId === a2.credentialId)?.revoked).toBe(true);
    expect(all.credentials.find((c) => c.principal === "carol")?.revoked).toBe(false);
    expect((await admin.credentials.listRevocations({})).revocations).toHaveLength(3);
    await expectCode(
      admin.credentials.revokePrincipal({ principal: "alice", until: timestampFromMs(Date.now() - 1000) }),
      Code.InvalidArgument,
    );
  });
});
