// Edge enrollment, credential/principal revocation at every edge within 5 s, and upstream
// identity through AssumeRole, with two real edges on one control plane and a verifying moto.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuditEvent } from "@tollgate/proto";
import { type ControlPlaneClient, type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, cleanupNames, NATS_URL, REDIS_URL, runProcess, uniqueNames } from "./support/dev-instance.js";
import {
  adminClientFor,
  CONTROL_PLANE_MAIN,
  EDGE_MAIN,
  type ServerProcess,
  startServerProcess,
} from "./support/tollgate-processes.js";

interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  credentialId: string;
}

const names = uniqueNames();
const homes: string[] = [];
const cpHome = mkdtempSync(join(tmpdir(), "tollgate-enroll-cp-"));
homes.push(cpHome);
const baseEnv: NodeJS.ProcessEnv = { ...process.env };
for (const k of Object.keys(baseEnv)) if (k.startsWith("AWS_") || k.startsWith("TOLLGATE_")) delete baseEnv[k];
Object.assign(baseEnv, {
  TOLLGATE_NATS_URL: NATS_URL,
  TOLLGATE_REDIS_URL: REDIS_URL,
  TOLLGATE_REDIS_PREFIX: names.redisPrefix,
  TOLLGATE_AUDIT_STREAM: names.stream,
  TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
  TOLLGATE_LOG_LEVEL: "info",
});

let moto: MotoServer;
let cp: ServerProcess;
let admin: ControlPlaneClient;
const edges = new Map<string, { proc: ServerProcess; home: string }>();

function cli(args: string[]) {
  return runProcess(process.execPath, [CLI, ...args], {
    ...baseEnv,
    TOLLGATE_HOME: cpHome,
    TOLLGATE_API_URL: cp.url,
  });
}

async function startEdge(name: string, enrollToken: string, home?: string): Promise<ServerProcess> {
  const edgeHome = home ?? mkdtempSync(join(tmpdir(), `tollgate-enroll-${name}-`));
  if (home === undefined) homes.push(edgeHome);
  const proc = await startServerProcess(`edge ${name}`, EDGE_MAIN, {
    ...baseEnv,
    TOLLGATE_HOME: edgeHome,
    TOLLGATE_EDGE_LISTEN: "127.0.0.1:0",
    TOLLGATE_CONTROL_PLANE_URL: cp.url,
    TOLLGATE_EDGE_ENROLL_TOKEN: enrollToken,
  });
  edges.set(name, { proc, home: edgeHome });
  return proc;
}

function sts(endpoint: string, cred: Credential): STSClient {
  return new STSClient({
    endpoint,
    region: "us-east-1",
    credentials: {
      accessKeyId: cred.accessKeyId,
      secretAccessKey: cred.secretAccessKey,
      sessionToken: cred.sessionToken,
    },
    maxAttempts: 1,
  });
}

/** GetCallerIdentity through an edge: the ARN, or the error code and message. */
async function whoAmI(
  endpoint: string,
  cred: Credential,
): Promise<{ ok: true; arn: string } | { ok: false; code: string; status: number; message: string }> {
  const client = sts(endpoint, cred);
  try {
    const res = await client.send(new GetCallerIdentityCommand({}));
    return { ok: true, arn: res.Arn ?? "" };
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { ok: false, code: e.name, status: e.$metadata?.httpStatusCode ?? 0, message: e.message };
  } finally {
    client.destroy();
  }
}

async function issue(principal: string, connection = "default"): Promise<Credential> {
  const r = await admin.credentials.issueCredential({ principal, connection, ttlSeconds: 3600n });
  return {
    accessKeyId: r.accessKeyId,
    secretAccessKey: r.secretAccessKey,
    sessionToken: r.sessionToken,
    credentialId: r.credentialId,
  };
}

/** Polls `endpoint` with `cred` every 100 ms until refused; returns when (performance.now()). */
async function refusedAt(endpoint: string, cred: Credential, timeoutMs = 15_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const r = await whoAmI(endpoint, cred);
    if (!r.ok) {
      expect(r.code).toBe("InvalidClientTokenId");
      expect(r.status).toBe(403);
      expect(r.message).toBe("The security token included in the request is revoked");
      return performance.now();
    }
    await sleep(100);
  }
  throw new Error(`${endpoint} still accepts the revoked credential after ${timeoutMs} ms`);
}

async function events(filter: { principal: string; errorCode?: string }, atLeast: number): Promise<AuditEvent[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await admin.audit.queryEvents({ filter, pageSize: 500 });
    if (res.events.length >= atLeast || Date.now() > deadline) return res.events;
    await sleep(200);
  }
}

beforeAll(async () => {
  moto = await startMotoServer({ verifySignatures: true });
  cp = await startServerProcess("control plane", CONTROL_PLANE_MAIN, {
    ...baseEnv,
    TOLLGATE_HOME: cpHome,
    TOLLGATE_API_LISTEN: "127.0.0.1:0",
  });
  admin = adminClientFor(cpHome, cp.url);
  await admin.connections.createConnection({
    connection: {
      name: "default",
      upstreamEndpoint: moto.endpoint,
      upstreamAccessKeyId: moto.accessKeyId,
      accountId: moto.accountId,
    },
    upstreamSecretAccessKey: moto.secretAccessKey,
  });
  // Two edges, each enrolled with its own one-time token from the CLI.
  for (const [name, region] of [
    ["edge-a", "eu-west-1"],
    ["edge-b", "us-east-2"],
  ] as const) {
    const out = await cli([
      "edge",
      "enroll-token",
      "--name",
      name,
      "--label",
      "vpc=vpc-123",
      "--label",
      `region=${region}`,
      "--ttl",
      "10m",
      "--json",
    ]);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    const { token } = JSON.parse(out.stdout) as { token: string };
    await startEdge(name, token);
  }
}, 180_000);

afterAll(async () => {
  for (const { proc } of edges.values()) await proc.stop().catch(() => undefined);
  await cp?.stop().catch(() => undefined);
  await moto?.close().catch(() => undefined);
  await cleanupNames(names).catch(() => undefined);
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function edgeUrl(name: string): string {
  const e = edges.get(name);
  if (e === undefined) throw new Error(`no edge ${name}`);
  return e.proc.url;
}

describe("edge enrollment", () => {
  it("enrolled edges authenticate by signature, heartbeat, and are listed with their labels", async () => {
    for (const name of ["edge-a", "edge-b"]) {
      const home = edges.get(name)?.home as string;
      const saved = JSON.parse(readFileSync(join(home, "edge", "enrollment.json"), "utf8")) as {
        edgeName: string;
        keyId: string;
      };
      const key = JSON.parse(readFileSync(join(home, "edge", "signing-key.json"), "utf8")) as { keyId: string };
      expect(saved.edgeName).toBe(name);
      expect(saved.keyId).toBe(key.keyId);
    }
    // Heartbeats arrive with the 2 s config poll.
    await sleep(2_500);
    const out = await cli(["edge", "list", "--json"]);
    expect(out.code).toBe(0);
    const listed = out.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { name: string; labels: Record<string, string>; status: string; keyIds: string[] });
    expect(listed.map((e) => e.name)).toEqual(["edge-a", "edge-b"]);
    expect(listed.every((e) => e.status === "healthy")).toBe(true);
    expect(listed[0]?.labels).toEqual({ region: "eu-west-1", vpc: "vpc-123" });
    expect(listed[1]?.labels).toEqual({ region: "us-east-2", vpc: "vpc-123" });
    const table = await cli(["edge", "list"]);
    expect(table.stdout).toMatch(/^NAME\s+STATUS\s+LAST HEARTBEAT/);
    expect(table.stdout).toContain("region=eu-west-1,vpc=vpc-123");

    // The token was used up: a third edge with edge-a's token... a fresh token works once.
    const out2 = await cli(["edge", "enroll-token", "--name", "edge-c", "--json"]);
    const { token } = JSON.parse(out2.stdout) as { token: string };
    const c = await startEdge("edge-c", token);
    await expect(startEdge("edge-d", token)).rejects.toThrow(/enrollment token is unknown, used or expired/);
    const cred = await issue("enroll-check");
    expect(await whoAmI(c.url, cred)).toMatchObject({ ok: true });
  });

  it("an enrolled edge restarts without a token", async () => {
    const e = edges.get("edge-b");
    if (e === undefined) throw new Error("no edge-b");
    await e.proc.stop();
    const proc = await startEdge("edge-b", "", e.home);
    expect(proc.lines.join("\n")).toContain('"event":"edge_enrolled"');
    const cred = await issue("restart-check");
    expect(await whoAmI(proc.url, cred)).toMatchObject({ ok: true });
  });
});

describe("revocation at every edge", () => {
  it("a revoked credential is refused by both edges within 5 s; other credentials keep working", async () => {
    const revoked = await issue("alice");
    const sibling = await issue("alice");
    const bob = await issue("bob");
    for (const name of ["edge-a", "edge-b"]) {
      for (const cred of [revoked, sibling, bob]) expect(await whoAmI(edgeUrl(name), cred)).toMatchObject({ ok: true });
    }

    const t0 = performance.now();
    await admin.credentials.revokeCredential({ credentialId: revoked.credentialId });
    const times = await Promise.all(["edge-a", "edge-b"].map((name) => refusedAt(edgeUrl(name), revoked)));
    const latencyMs = Math.max(...times) - t0;
    // A correctness bound, not a benchmark: the edges poll every 2 s.
    expect(latencyMs).toBeLessThan(5_000);
    process.stdout.write(`credential revocation reached both edges in ${Math.round(latencyMs)} ms\n`);

    for (const name of ["edge-a", "edge-b"]) {
      expect(await whoAmI(edgeUrl(name), sibling)).toMatchObject({ ok: true });
      expect(await whoAmI(edgeUrl(name), bob)).toMatchObject({ ok: true });
    }
    const refused = await events({ principal: "alice", errorCode: "InvalidClientTokenId" }, 2);
    expect(new Set(refused.map((e) => e.tollgate?.edge))).toEqual(new Set(["edge-a", "edge-b"]));
    for (const e of refused) {
      expect(e.tollgate?.reason).toBe("credential-revoked");
      expect(e.tollgate?.credentialId).toBe(revoked.credentialId);
      expect(e.errorMessage).toBe("The security token included in the request is revoked");
    }
  });

  it("a revoked principal (via the CLI) is refused by both edges within 5 s; other principals are not", async () => {
    const carol1 = await issue("carol");
    const carol2 = await issue("carol");
    const dave = await issue("dave");
    for (const cred of [carol1, carol2, dave])
      expect(await whoAmI(edgeUrl("edge-a"), cred)).toMatchObject({ ok: true });

    const out = await cli(["credentials", "revoke", "--principal", "carol", "--until", "2h"]);
    expect(out.stderr).toBe("");
    expect(out.stdout).toMatch(/^revoked principal carol until \d{4}-/);
    const t0 = performance.now();
    const times = await Promise.all(
      ["edge-a", "edge-b"].flatMap((name) => [carol1, carol2].map((cred) => refusedAt(edgeUrl(name), cred))),
    );
    expect(Math.max(...times) - t0).toBeLessThan(5_000);
    for (const name of ["edge-a", "edge-b"]) expect(await whoAmI(edgeUrl(name), dave)).toMatchObject({ ok: true });

    // No new credentials for carol until then.
    const denied = await admin.credentials
      .issueCredential({ principal: "carol" })
      .then(() => undefined)
      .catch((e: unknown) => ConnectError.from(e));
    expect(denied?.code).toBe(Code.PermissionDenied);

    const list = await cli(["credentials", "list", "--principal", "carol", "--json"]);
    const rows = list.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { principal: string; revoked: boolean });
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.principal === "carol" && r.revoked)).toBe(true);
    const revs = await cli(["credentials", "revocations"]);
    expect(revs.stdout).toContain("carol");
    const refused = await events({ principal: "carol", errorCode: "InvalidClientTokenId" }, 4);
    expect(refused.every((e) => e.tollgate?.reason === "principal-revoked")).toBe(true);
  });

  it("a revoked edge is refused by the control plane and stops serving", async () => {
    const cred = await issue("erin");
    expect(await whoAmI(edgeUrl("edge-c"), cred)).toMatchObject({ ok: true });
    const out = await cli(["edge", "revoke", "edge-c"]);
    expect(out.stdout).toBe("revoked edge edge-c\n");
    await refusedAtAny(edgeUrl("edge-c"), cred);
    const listed = (await admin.edge.listEdges({})).edges.find((e) => e.name === "edge-c");
    expect(listed?.status).toBe("revoked");
    const logs = edges.get("edge-c")?.proc.lines.join("\n") ?? "";
    expect(logs).toContain('"event":"edge_revoked"');
    // The others are untouched.
    expect(await whoAmI(edgeUrl("edge-a"), cred)).toMatchObject({ ok: true });
  });
});

/** Polls until the edge refuses `cred` for any reason (a revoked edge serves nothing). */
async function refusedAtAny(endpoint: string, cred: Credential): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = await whoAmI(endpoint, cred);
    if (!r.ok) return;
    await sleep(200);
  }
  throw new Error("revoked edge still serves");
}

describe("upstream identity", () => {
  it("AssumeRole with the principal as session name and SourceIdentity; the audit event names the role", async () => {
    // The role in moto (with moto's admin keys) that the connection assumes.
    const iam = new IAMClient({
      endpoint: moto.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey },
    });
    const role = await iam.send(
      new CreateRoleCommand({
        RoleName: "tollgate-agents",
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              // moto matches the calling user's ARN (it does not expand :root).
              Principal: { AWS: `arn:aws:iam::${moto.accountId}:user/tollgate-demo` },
              Action: ["sts:AssumeRole", "sts:SetSourceIdentity"],
            },
          ],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: "tollgate-agents",
        PolicyName: "all",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }],
        }),
      }),
    );
    iam.destroy();
    const roleArn = role.Role?.Arn as string;

    const out = await runProcess(
      process.execPath,
      [
        CLI,
        "connection",
        "create",
        "assumed",
        "--upstream-endpoint",
        moto.endpoint,
        "--upstream-access-key-id",
        moto.accessKeyId,
        "--upstream-secret-access-key-stdin",
        "--account-id",
        moto.accountId,
        "--role-arn",
        roleArn,
      ],
      { ...baseEnv, TOLLGATE_HOME: cpHome, TOLLGATE_API_URL: cp.url },
      moto.secretAccessKey,
    );
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);

    const cred = await issue("agent:ci", "assumed");
    // Edges poll their config every 2 s (an unknown connection only forces a refresh if the
    // config is older than 500 ms): let edge-a learn the new connection first.
    await sleep(2_500);
    const first = await whoAmI(edgeUrl("edge-a"), cred);
    const failures = (edges.get("edge-a")?.proc.lines ?? []).filter((l) => l.includes("assume_role_failed"));
    expect(failures).toEqual([]);
    // moto's own answer: the call reached it signed with the assumed-role keys for this principal.
    expect(first).toEqual({ ok: true, arn: `arn:aws:sts::${moto.accountId}:assumed-role/tollgate-agents/agent-ci` });
    const second = await whoAmI(edgeUrl("edge-a"), cred);
    expect(second).toEqual(first);
    // The static connection still signs with moto's user.
    const plain = await whoAmI(edgeUrl("edge-a"), await issue("agent:ci"));
    expect(plain).toEqual({ ok: true, arn: expect.stringMatching(/:user\//) });

    const recorded = (await events({ principal: "agent:ci" }, 3)).filter((e) => e.tollgate?.connection === "assumed");
    expect(recorded).toHaveLength(2);
    for (const e of recorded) {
      expect(e.tollgate?.upstreamIdentity).toMatchObject({
        source: "assume-role",
        roleArn,
        assumedRoleArn: `arn:aws:sts::${moto.accountId}:assumed-role/tollgate-agents/agent-ci`,
        sessionName: "agent-ci",
        sourceIdentity: "agent-ci",
      });
      expect(e.tollgate?.upstreamIdentity?.accessKeyId).toMatch(/^ASIA/);
    }
    // One AssumeRole for both calls (cached per connection and principal).
    const assumed = (edges.get("edge-a")?.proc.lines ?? []).filter((l) => l.includes('"event":"assume_role"'));
    expect(assumed).toHaveLength(1);
  });
});
