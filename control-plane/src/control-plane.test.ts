import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  type AuditEvent,
  AuditEventSchema,
  ConnectionService,
  CreateConnectionResponseSchema,
  CredentialService,
  Decision,
  EdgeService,
  GetConnectionResponseSchema,
  ListConnectionsResponseSchema,
} from "@tollgate/proto";
import {
  auditEventToJson,
  auditSubject,
  type ControlPlaneClient,
  createControlPlaneClient,
  type EdgeSigningKey,
  generateEdgeSigningKey,
  openSessionToken,
} from "@tollgate/sdk";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "./control-plane.js";
import type { ControlPlaneOptions } from "./control-plane-options.js";
import type { Logger } from "./logger.js";

const NATS_URL = "nats://127.0.0.1:4222";
const REDIS_URL = "redis://127.0.0.1:6379";

const id = randomBytes(4).toString("hex");
const redisPrefix = `tollgate-test:${id}:`;
const stream = `TGTEST_${id}`;
const subjectPrefix = `tgtest_${id}`;

interface LogLine {
  level: string;
  obj: object;
  msg?: string;
}
const logLines: LogLine[] = [];
const logger: Logger = {
  debug: (obj, msg) => logLines.push({ level: "debug", obj, msg }),
  info: (obj, msg) => logLines.push({ level: "info", obj, msg }),
  warn: (obj, msg) => logLines.push({ level: "warn", obj, msg }),
  error: (obj, msg) => logLines.push({ level: "error", obj, msg }),
};

let home: string;
let cp: ControlPlane;
let adminToken: string;
let edgeToken: string;
let admin: ControlPlaneClient;
/** An enrolled edge's key (edge `test-edge`); {@link edgeClient} signs with it. */
let edgeKey: EdgeSigningKey;
let redis: Redis;
let nc: NatsConnection;

function newControlPlane(extra: Partial<ControlPlaneOptions> = {}): ControlPlane {
  return new ControlPlane({
    ...extra,
    home,
    natsUrl: NATS_URL,
    redisUrl: REDIS_URL,
    redisPrefix,
    auditStream: stream,
    auditSubjectPrefix: subjectPrefix,
    host: "127.0.0.1",
    port: 0,
    logger,
  });
}

/** A client of the enrolled edge `test-edge` (signed requests, no bearer token). */
function edgeClient(): ControlPlaneClient {
  return createControlPlaneClient({ baseUrl: cp.url, edgeAuth: { edgeName: "test-edge", key: edgeKey } });
}

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

async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "tollgate-cp-"));
  cp = newControlPlane();
  await cp.start();
  adminToken = (await readFile(join(home, "admin.token"), "utf8")).trim();
  edgeToken = (await readFile(join(home, "edge.token"), "utf8")).trim();
  admin = createControlPlaneClient({ baseUrl: cp.url, token: adminToken });
  const { token } = await admin.edgeAdmin.createEnrollmentToken({ edgeName: "test-edge" });
  edgeKey = generateEdgeSigningKey();
  await createControlPlaneClient({ baseUrl: cp.url }).edgeEnrollment.enroll({
    token,
    publicKeyPem: edgeKey.publicKeyPem,
  });
  redis = new Redis(REDIS_URL);
  nc = await connect({ servers: NATS_URL });
});

afterAll(async () => {
  await cp?.close();
  if (redis !== undefined) {
    const keys = await redis.keys(`${redisPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
  if (nc !== undefined) {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => false);
    await nc.close();
  }
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe("state", () => {
  it("creates state.json (0600, dir 0700) and token files on first start", async () => {
    expect(cp.createdState).toBe(true);
    expect(adminToken).toMatch(/^tga_[A-Za-z0-9_-]{43}$/);
    expect(edgeToken).toMatch(/^tge_[A-Za-z0-9_-]{43}$/);
    expect((await stat(join(home, "control-plane"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(home, "control-plane", "state.json"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, "admin.token"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, "edge.token"))).mode & 0o777).toBe(0o600);
    const state = await readFile(join(home, "control-plane", "state.json"), "utf8");
    expect(state).not.toContain(adminToken);
    expect(state).not.toContain(edgeToken);
  });
});

describe("auth", () => {
  it("rejects a missing token", async () => {
    const anon = createControlPlaneClient({ baseUrl: cp.url });
    await expectCode(anon.connections.listConnections({}), Code.Unauthenticated);
  });

  it("rejects a wrong token", async () => {
    const wrong = createControlPlaneClient({ baseUrl: cp.url, token: `tga_${randomBytes(32).toString("base64url")}` });
    await expectCode(wrong.connections.listConnections({}), Code.Unauthenticated);
    await expectCode(wrong.edge.getEdgeConfig({}), Code.Unauthenticated);
  });

  it("refuses an enrolled edge on admin APIs but accepts it on EdgeService", async () => {
    const edge = edgeClient();
    await expectCode(edge.connections.listConnections({}), Code.PermissionDenied);
    await expectCode(edge.credentials.issueCredential({ principal: "x" }), Code.PermissionDenied);
    await expectCode(edge.audit.queryEvents({}), Code.PermissionDenied);
    const res = await edge.edge.getEdgeConfig({ edgeName: "test-edge" });
    expect(res.audit?.stream).toBe(stream);
    expect(res.audit?.subjectPrefix).toBe(subjectPrefix);
  });

  it("logs use of the break-glass admin token without the token", async () => {
    await admin.connections.listConnections({});
    const uses = logLines.filter((l) => (l.obj as { event?: string }).event === "admin_token_used");
    expect(uses.length).toBeGreaterThan(0);
    expect(JSON.stringify(logLines.map((l) => l.obj))).not.toContain(adminToken);
  });
});

describe("one port for gRPC (HTTP/2) and Connect (HTTP/1.1)", () => {
  it("serves the Connect protocol over HTTP/1.1 and /healthz", async () => {
    const auth: Interceptor = (next) => async (req) => {
      req.header.set("authorization", `Bearer ${adminToken}`);
      return await next(req);
    };
    const transport = createConnectTransport({ httpVersion: "1.1", baseUrl: cp.url, interceptors: [auth] });
    const client = createClient(ConnectionService, transport);
    const res = await client.listConnections({});
    expect(Array.isArray(res.connections)).toBe(true);
    const anon = createClient(ConnectionService, createConnectTransport({ httpVersion: "1.1", baseUrl: cp.url }));
    await expectCode(anon.listConnections({}), Code.Unauthenticated);

    const health = await fetch(`${cp.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok");
  });
});

describe("ConnectionService", () => {
  const secret = `upstream-secret-${randomBytes(12).toString("hex")}`;
  const sessionToken = `upstream-session-${randomBytes(12).toString("hex")}`;
  const responses: string[] = [];

  it("creates, gets, lists and deletes without ever returning the secret", async () => {
    const revBefore = BigInt((await redis.get(`${redisPrefix}revision`)) ?? "0");
    const created = await admin.connections.createConnection({
      connection: { name: "default", upstreamAccessKeyId: "AKIAUPSTREAM", accountId: "123456789012" },
      upstreamSecretAccessKey: secret,
      upstreamSessionToken: sessionToken,
    });
    responses.push(toJsonString(CreateConnectionResponseSchema, created));
    expect(created.connection?.region).toBe("us-east-1");
    expect(created.connection?.hasUpstreamSecret).toBe(true);
    expect(BigInt((await redis.get(`${redisPrefix}revision`)) ?? "0")).toBe(revBefore + 1n);

    const got = await admin.connections.getConnection({ name: "default" });
    responses.push(toJsonString(GetConnectionResponseSchema, got));
    expect(got.connection?.upstreamAccessKeyId).toBe("AKIAUPSTREAM");
    expect(got.connection?.accountId).toBe("123456789012");

    await admin.connections.createConnection({
      connection: { name: "other", region: "eu-west-1", upstreamEndpoint: "http://127.0.0.1:4566" },
    });
    const list = await admin.connections.listConnections({});
    responses.push(toJsonString(ListConnectionsResponseSchema, list));
    expect(list.connections.map((c) => c.name)).toEqual(["default", "other"]);
    expect(list.connections[1]?.hasUpstreamSecret).toBe(false);
    expect(list.connections[1]?.region).toBe("eu-west-1");

    for (const json of responses) {
      expect(json).not.toContain(secret);
      expect(json).not.toContain(sessionToken);
    }

    // Stored encrypted: the raw Redis value does not contain the plaintext.
    const raw = await redis.hget(`${redisPrefix}connections`, "default");
    expect(raw).toBeTruthy();
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(sessionToken);

    await admin.connections.deleteConnection({ name: "other" });
    await expectCode(admin.connections.getConnection({ name: "other" }), Code.NotFound);
    await expectCode(admin.connections.deleteConnection({ name: "other" }), Code.NotFound);
  });

  it("refuses duplicates unless allow_replace, and keeps the create time", async () => {
    const first = await admin.connections.getConnection({ name: "default" });
    await expectCode(
      admin.connections.createConnection({ connection: { name: "default" }, upstreamSecretAccessKey: secret }),
      Code.AlreadyExists,
    );
    const replaced = await admin.connections.createConnection({
      connection: { name: "default", upstreamAccessKeyId: "AKIAUPSTREAM", accountId: "123456789012" },
      upstreamSecretAccessKey: secret,
      upstreamSessionToken: sessionToken,
      allowReplace: true,
    });
    expect(replaced.connection?.createTime).toEqual(first.connection?.createTime);
  });

  it("validates names", async () => {
    await expectCode(admin.connections.createConnection({ connection: { name: "Bad_Name" } }), Code.InvalidArgument);
    await expectCode(admin.connections.createConnection({}), Code.InvalidArgument);
    await expectCode(admin.connections.getConnection({ name: "-x" }), Code.InvalidArgument);
    await expectCode(admin.connections.getConnection({ name: "a".repeat(64) }), Code.InvalidArgument);
  });

  it("hands decrypted secrets to edges only", async () => {
    const edge = edgeClient();
    const config = await edge.edge.getEdgeConfig({ edgeName: "test-edge" });
    const def = config.connections.find((c) => c.name === "default");
    expect(def?.upstreamSecretAccessKey).toBe(secret);
    expect(def?.upstreamSessionToken).toBe(sessionToken);
    expect(config.revision).toBe(BigInt((await redis.get(`${redisPrefix}revision`)) ?? "0"));
    expect(config.credentialKeys.length).toBe(1);
    expect(config.credentialKeys[0]?.key.length).toBe(32);
  });
});

describe("CredentialService", () => {
  it("issues a credential that the edge config's keys open", async () => {
    const cred = await admin.credentials.issueCredential({ principal: "ci-bot", ttlSeconds: 900n });
    expect(cred.connection).toBe("default");
    expect(cred.principal).toBe("ci-bot");
    expect(cred.accessKeyId).toMatch(/^TGIA/);
    const edge = edgeClient();
    const config = await edge.edge.getEdgeConfig({});
    const keys = new Map(config.credentialKeys.map((k) => [k.keyId, k.key]));
    const claims = openSessionToken(cred.sessionToken, keys);
    expect(claims.principal).toBe("ci-bot");
    expect(claims.connection).toBe("default");
    expect(claims.secretAccessKey).toBe(cred.secretAccessKey);
    expect(claims.accessKeyId).toBe(cred.accessKeyId);
    expect(claims.credentialId).toBe(cred.credentialId);
    expect(claims.expiresAtSec - claims.issuedAtSec).toBe(900);

    // Metadata recorded with a TTL, without secret or token.
    const recordKey = `${redisPrefix}credential:${cred.credentialId}`;
    const record = await redis.get(recordKey);
    expect(record).toBeTruthy();
    expect(JSON.parse(record ?? "{}")).toMatchObject({
      credentialId: cred.credentialId,
      accessKeyId: cred.accessKeyId,
      principal: "ci-bot",
      connection: "default",
    });
    expect(record).not.toContain(cred.secretAccessKey);
    expect(record).not.toContain(cred.sessionToken);
    const ttl = await redis.ttl(recordKey);
    expect(ttl).toBeGreaterThan(800);
    expect(ttl).toBeLessThanOrEqual(900);
  });

  it("defaults the TTL to an hour", async () => {
    const cred = await admin.credentials.issueCredential({ principal: "agent@example.com" });
    const expiresMs = Number(cred.expireTime?.seconds ?? 0n) * 1000;
    expect(Math.abs(expiresMs - (Date.now() + 3600_000))).toBeLessThan(5000);
  });

  it("validates principal, connection and TTL", async () => {
    await expectCode(admin.credentials.issueCredential({}), Code.InvalidArgument);
    await expectCode(admin.credentials.issueCredential({ principal: "has space" }), Code.InvalidArgument);
    await expectCode(admin.credentials.issueCredential({ principal: "p", ttlSeconds: 59n }), Code.InvalidArgument);
    await expectCode(admin.credentials.issueCredential({ principal: "p", ttlSeconds: 43_201n }), Code.InvalidArgument);
    await expectCode(admin.credentials.issueCredential({ principal: "p", connection: "nope" }), Code.NotFound);
  });
});

describe("audit", () => {
  const base = Date.parse("2030-01-01T00:00:00.000Z");

  function event(i: number, principal: string, connection: string, service: string, operation: string): AuditEvent {
    return create(AuditEventSchema, {
      eventVersion: "1.0",
      eventId: `${id}-${i}-${randomBytes(4).toString("hex")}`,
      eventTime: new Date(base + i * 1000).toISOString(),
      eventSource: `${service}.amazonaws.com`,
      eventName: operation,
      awsRegion: "us-east-1",
      eventType: "AwsApiCall",
      readOnly: false,
      userIdentity: { type: "TollgatePrincipal", principalId: principal, accessKeyId: "TGIATEST" },
      tollgate: { connection, edge: "test-edge", decision: Decision.ALLOW, signingName: service, httpStatus: 200 },
    });
  }

  async function publish(ev: AuditEvent, msgID: string | undefined = ev.eventId) {
    const js = jetstream(nc);
    const subject = auditSubject(subjectPrefix, {
      connection: ev.tollgate?.connection ?? "",
      principal: ev.userIdentity?.principalId ?? "",
      service: ev.tollgate?.signingName ?? "",
      operation: ev.eventName,
    });
    return await js.publish(subject, auditEventToJson(ev), msgID === undefined ? undefined : { msgID });
  }

  const events: AuditEvent[] = [];

  it("configures the stream append-only with a 2 minute duplicate window", async () => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    expect(info.config.deny_delete).toBe(true);
    expect(info.config.deny_purge).toBe(true);
    expect(info.config.duplicate_window).toBe(120_000 * 1_000_000);
    expect(info.config.subjects).toEqual([`${subjectPrefix}.audit.>`, `${subjectPrefix}.checkpoint.>`]);
    expect(info.config.storage).toBe("file");
    expect(info.config.max_age).toBe(0);
  });

  it("ingests published events, dedupes by eventID, and queries with filters and paging", async () => {
    for (let i = 0; i < 12; i++) {
      const principal = i % 2 === 0 ? "alice" : "bob";
      const service = i % 3 === 0 ? "s3" : "sts";
      const operation = service === "s3" ? "PutObject" : "GetCallerIdentity";
      events.push(event(i, principal, i < 10 ? "default" : "other", service, operation));
    }
    for (const ev of events) await publish(ev);
    // Same Nats-Msg-Id: JetStream drops it. Different Nats-Msg-Id, same eventID: the index drops it.
    const dup = await publish(events[0] as AuditEvent);
    expect(dup.duplicate).toBe(true);
    const dup2 = await publish(events[1] as AuditEvent, `other-${randomBytes(4).toString("hex")}`);
    expect(dup2.duplicate).toBe(false);
    // A malformed message is dropped without stopping the ingest.
    await jetstream(nc).publish(`${subjectPrefix}.audit.v1.x.y.z.w`, "{not json");
    const late = event(20, "carol", "default", "s3", "GetObject");
    await publish(late);
    events.push(late);

    const all = await eventually(async () => {
      const res = await admin.audit.queryEvents({ pageSize: 1000 });
      return res.events.length >= events.length && res.events.some((e) => e.eventId === late.eventId) ? res : undefined;
    });
    expect(all.events.length).toBe(events.length);
    expect(new Set(all.events.map((e) => e.eventId)).size).toBe(events.length);
    // Newest first.
    const times = all.events.map((e) => Date.parse(e.eventTime));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(all.nextPageToken).toBe("");

    const alice = await admin.audit.queryEvents({ filter: { principal: "alice" } });
    expect(alice.events.length).toBe(6);
    expect(alice.events.every((e) => e.userIdentity?.principalId === "alice")).toBe(true);

    const s3 = await admin.audit.queryEvents({ filter: { service: "s3", operation: "PutObject" } });
    expect(s3.events.map((e) => e.eventId).sort()).toEqual(
      events
        .filter((e) => e.tollgate?.signingName === "s3" && e.eventName === "PutObject")
        .map((e) => e.eventId)
        .sort(),
    );

    const other = await admin.audit.queryEvents({ filter: { connection: "other" } });
    expect(other.events.length).toBe(2);

    const window = await admin.audit.queryEvents({
      filter: { since: timestampFromMs(base + 2000), until: timestampFromMs(base + 5000) },
    });
    expect(window.events.map((e) => e.eventTime)).toEqual([
      new Date(base + 4000).toISOString(),
      new Date(base + 3000).toISOString(),
      new Date(base + 2000).toISOString(),
    ]);

    // Paging through everything in pages of 5 returns each event once, in order.
    const paged: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const res = await admin.audit.queryEvents({ pageSize: 5, pageToken: token });
      expect(res.events.length).toBeLessThanOrEqual(5);
      paged.push(...res.events.map((e) => e.eventId));
      token = res.nextPageToken;
      pages++;
    } while (token !== "");
    expect(pages).toBe(3);
    expect(paged).toEqual(all.events.map((e) => e.eventId));

    await expectCode(admin.audit.queryEvents({ pageToken: "garbage" }), Code.InvalidArgument);
    expect(logLines.some((l) => l.msg === "dropping malformed audit event")).toBe(true);
  });

  it("tails new matching events only, until the client cancels", async () => {
    const abort = new AbortController();
    const received: AuditEvent[] = [];
    const published: { match: AuditEvent; miss: AuditEvent }[] = [];
    const consumed = (async () => {
      for await (const res of admin.audit.tailEvents(
        { filter: { principal: "tailer", service: "s3" } },
        { signal: abort.signal, timeoutMs: 0 },
      )) {
        if (res.event !== undefined) received.push(res.event);
        if (received.length >= 1) abort.abort();
      }
    })().catch((err: unknown) => {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    });
    // The tail starts at the stream's end when the server handles the call, which the client
    // cannot observe; publish pairs until one arrives.
    let i = 100;
    while (received.length === 0 && i < 200) {
      const pair = {
        miss: event(i++, "someone-else", "default", "s3", "PutObject"),
        match: event(i++, "tailer", "default", "s3", "PutObject"),
      };
      published.push(pair);
      await publish(pair.miss);
      await publish(pair.match);
      await new Promise((r) => setTimeout(r, 100));
    }
    await consumed;
    expect(received.length).toBeGreaterThan(0);
    for (const ev of received) {
      expect(ev.userIdentity?.principalId).toBe("tailer");
      expect(published.some((p) => p.match.eventId === ev.eventId)).toBe(true);
    }
    // Events published before the tail started are never delivered.
    expect(received.some((ev) => events.some((e) => e.eventId === ev.eventId))).toBe(false);
    // The server removed the tail's ordered consumer once the client went away.
    const jsm = await jetstreamManager(nc);
    await eventually(async () => ((await jsm.streams.info(stream)).state.consumer_count === 1 ? true : undefined));
  });

  it("ends open tails when the control plane closes", async () => {
    // A second instance with its own home and index consumer on the same stream.
    const tailHome = await mkdtemp(join(tmpdir(), "tollgate-cp-tail-"));
    const second = new ControlPlane({
      ...cp.options,
      home: tailHome,
      indexPath: join(tailHome, "index.sqlite"),
      auditIndexConsumer: `${stream}_INDEX2`,
      port: 0,
    });
    try {
      await second.start();
      const token = (await readFile(join(tailHome, "admin.token"), "utf8")).trim();
      const client = createControlPlaneClient({ baseUrl: second.url, token });
      const done = (async () => {
        for await (const _ of client.audit.tailEvents({}, { timeoutMs: 0 })) {
          // no events expected
        }
      })().then(
        () => "ended",
        (err: unknown) => Code[ConnectError.from(err).code],
      );
      await new Promise((r) => setTimeout(r, 200));
      await second.close();
      expect(await done).toBeTypeOf("string");
    } finally {
      await second.close();
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.delete(stream, `${stream}_INDEX2`).catch(() => false);
      await rm(tailHome, { recursive: true, force: true });
    }
  });
});

describe("restart and shutdown", () => {
  it("reuses state on the next start without rewriting tokens, and leaks no connections", async () => {
    const stateBefore = await readFile(join(home, "control-plane", "state.json"), "utf8");
    const url = cp.url;
    const port = cp.address?.port ?? 0;
    await cp.close();
    // The port no longer accepts connections.
    await expect(
      new Promise<void>((resolve, reject) => {
        const s = netConnect(port, "127.0.0.1");
        s.once("connect", () => {
          s.destroy();
          resolve();
        });
        s.once("error", reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    cp = newControlPlane();
    await cp.start();
    expect(cp.createdState).toBe(false);
    expect(await readFile(join(home, "control-plane", "state.json"), "utf8")).toBe(stateBefore);
    expect((await readFile(join(home, "admin.token"), "utf8")).trim()).toBe(adminToken);
    const again = createControlPlaneClient({ baseUrl: cp.url, token: adminToken });
    const list = await again.connections.listConnections({});
    expect(list.connections.map((c) => c.name)).toEqual(["default"]);
    // The index survived the restart (and the durable consumer did not replay into it twice).
    const res = await again.audit.queryEvents({ pageSize: 1000, filter: { principal: "alice" } });
    expect(res.events.length).toBe(6);
  });

  it("maps an unreachable Redis to Unavailable without leaking the cause", async () => {
    const broken = new ControlPlane({
      home,
      natsUrl: NATS_URL,
      redisUrl: "redis://127.0.0.1:1",
      redisPrefix,
      auditStream: stream,
      auditSubjectPrefix: subjectPrefix,
      port: 0,
      logger,
    });
    await expect(broken.start()).rejects.toThrow("cannot reach Redis at redis://127.0.0.1:1");
  });
});

describe("the shared edge token (legacy/dev switch)", () => {
  it("is refused by default (Unauthenticated), also on EdgeService", async () => {
    expect(cp.options.allowSharedEdgeToken).toBe(false);
    const shared = createControlPlaneClient({ baseUrl: cp.url, token: edgeToken });
    const err = await expectCode(shared.edge.getEdgeConfig({ edgeName: "test-edge" }), Code.Unauthenticated);
    expect(err.rawMessage).toBe("invalid bearer token");
    await expectCode(shared.edge.registerEdgeKey({ edgeName: "x", publicKeyPem: "x" }), Code.Unauthenticated);
    await expectCode(shared.edge.listEdges({}), Code.Unauthenticated);
    await expectCode(shared.connections.listConnections({}), Code.Unauthenticated);
    // The enrolled edge is unaffected.
    expect((await edgeClient().edge.getEdgeConfig({ edgeName: "test-edge" })).audit?.stream).toBe(stream);
  });

  it("is accepted on edge methods only when allowSharedEdgeToken is set, with a warning", async () => {
    await cp.close();
    const warningsBefore = logLines.filter((l) => (l.obj as { event?: string }).event === "shared_edge_token_allowed");
    expect(warningsBefore).toEqual([]);
    cp = newControlPlane({ allowSharedEdgeToken: true });
    await cp.start();
    const warnings = logLines.filter((l) => (l.obj as { event?: string }).event === "shared_edge_token_allowed");
    expect(warnings.map((l) => l.level)).toEqual(["warn"]);
    expect(JSON.stringify(logLines.map((l) => l.obj))).not.toContain(edgeToken);
    const shared = createControlPlaneClient({ baseUrl: cp.url, token: edgeToken });
    const res = await shared.edge.getEdgeConfig({ edgeName: "legacy-edge" });
    expect(res.audit?.stream).toBe(stream);
    expect(res.connections.map((c) => c.name)).toEqual(["default"]);
    // Still an edge credential: no admin APIs.
    await expectCode(shared.connections.listConnections({}), Code.PermissionDenied);
    await expectCode(shared.credentials.issueCredential({ principal: "x" }), Code.PermissionDenied);
    // A legacy edge registers its checkpoint key, but never under an enrolled edge's name.
    const legacyKey = generateEdgeSigningKey();
    const registered = await shared.edge.registerEdgeKey({
      edgeName: "legacy-edge",
      publicKeyPem: legacyKey.publicKeyPem,
    });
    expect(registered.keyId).toBe(legacyKey.keyId);
    await expectCode(
      shared.edge.registerEdgeKey({ edgeName: "test-edge", publicKeyPem: legacyKey.publicKeyPem }),
      Code.PermissionDenied,
    );
    const keys = (await createControlPlaneClient({ baseUrl: cp.url, token: adminToken }).edge.listEdges({})).keys;
    expect(keys.filter((k) => k.edgeName === "test-edge").map((k) => k.keyId)).toEqual([edgeKey.keyId]);

    // Back to the default: refused again.
    await cp.close();
    cp = newControlPlane();
    await cp.start();
    await expectCode(
      createControlPlaneClient({ baseUrl: cp.url, token: edgeToken }).edge.getEdgeConfig({}),
      Code.Unauthenticated,
    );
  });
});

describe("EdgeService", () => {
  it("is typed for edges", () => {
    expect(EdgeService.typeName).toBe("tollgate.edge.v1.EdgeService");
    expect(CredentialService.typeName).toBe("tollgate.credential.v1.CredentialService");
  });
});
