// How an edge authenticates at start: enrollment is the only default path. An unenrolled edge
// without an enrollment token exits with one line naming TOLLGATE_EDGE_ENROLL_TOKEN (even with
// $TOLLGATE_HOME/edge.token on disk); the shared edge token works only when both sides opt in
// (TOLLGATE_EDGE_TOKEN at the edge, TOLLGATE_ALLOW_SHARED_EDGE_TOKEN=true at the control plane).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupNames, NATS_URL, REDIS_URL, runProcess, uniqueNames } from "./support/dev-instance.js";
import { freePort } from "./support/nats-server-process.js";
import { CONTROL_PLANE_MAIN, EDGE_MAIN, type ServerProcess, startServerProcess } from "./support/tollgate-processes.js";

const names = uniqueNames();
const home = mkdtempSync(join(tmpdir(), "tollgate-edge-start-"));
const baseEnv: NodeJS.ProcessEnv = { ...process.env };
for (const k of Object.keys(baseEnv)) if (k.startsWith("AWS_") || k.startsWith("TOLLGATE_")) delete baseEnv[k];
Object.assign(baseEnv, {
  TOLLGATE_HOME: home,
  TOLLGATE_NATS_URL: NATS_URL,
  TOLLGATE_REDIS_URL: REDIS_URL,
  TOLLGATE_REDIS_PREFIX: names.redisPrefix,
  TOLLGATE_AUDIT_STREAM: names.stream,
  TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
});

let apiPort = 0;
let cp: ServerProcess | undefined;
let sharedToken = "";

async function startControlPlane(extra: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  await cp?.stop();
  cp = await startServerProcess("control plane", CONTROL_PLANE_MAIN, {
    ...baseEnv,
    TOLLGATE_API_LISTEN: `127.0.0.1:${apiPort}`,
    ...extra,
  });
  return cp;
}

/** Runs the edge (same home as the control plane, so edge.token is on disk) until it exits. */
function runEdge(extra: NodeJS.ProcessEnv) {
  return runProcess(
    process.execPath,
    [EDGE_MAIN],
    {
      ...baseEnv,
      TOLLGATE_EDGE_LISTEN: "127.0.0.1:0",
      TOLLGATE_CONTROL_PLANE_URL: `http://127.0.0.1:${apiPort}`,
      TOLLGATE_EDGE_NAME: `edge-${names.id}`,
      ...extra,
    },
    undefined,
    60_000,
  );
}

beforeAll(async () => {
  apiPort = await freePort();
  await startControlPlane();
  sharedToken = readFileSync(join(home, "edge.token"), "utf8").trim();
}, 60_000);

afterAll(async () => {
  await cp?.stop();
  await cleanupNames(names).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe("edge start-up authentication", () => {
  it("an unenrolled edge without an enrollment token exits with one line naming TOLLGATE_EDGE_ENROLL_TOKEN", async () => {
    const r = await runEdge({});
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('"event":"ready"');
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tollgate-edge: not enrolled .*TOLLGATE_EDGE_ENROLL_TOKEN/);
    // The shared token on disk was not used (and never printed).
    expect(r.stdout + r.stderr).not.toContain(sharedToken);
    expect(r.stdout).not.toContain("legacy_edge_token");
  }, 90_000);

  it("the shared token set explicitly is refused by a default control plane, with one line naming the switch", async () => {
    const r = await runEdge({ TOLLGATE_EDGE_TOKEN: sharedToken });
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('"event":"ready"');
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tollgate-edge: the control plane at .* refused the shared edge token/);
    expect(lines[0]).toContain("TOLLGATE_ALLOW_SHARED_EDGE_TOKEN=true");
    expect(lines[0]).toContain("TOLLGATE_EDGE_ENROLL_TOKEN");
    expect(r.stdout + r.stderr).not.toContain(sharedToken);
  }, 90_000);

  it("a control plane refuses a malformed TOLLGATE_ALLOW_SHARED_EDGE_TOKEN at start", async () => {
    const r = await runProcess(
      process.execPath,
      [CONTROL_PLANE_MAIN],
      { ...baseEnv, TOLLGATE_API_LISTEN: "127.0.0.1:0", TOLLGATE_ALLOW_SHARED_EDGE_TOKEN: "yes" },
      undefined,
      60_000,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe(
      'tollgate-control-plane: TOLLGATE_ALLOW_SHARED_EDGE_TOKEN="yes" must be true or false',
    );
  }, 90_000);

  it("with TOLLGATE_ALLOW_SHARED_EDGE_TOKEN=true, an edge with TOLLGATE_EDGE_TOKEN starts, warning legacy_edge_token", async () => {
    const c = await startControlPlane({ TOLLGATE_ALLOW_SHARED_EDGE_TOKEN: "true" });
    expect(c.lines.some((l) => l.includes('"event":"shared_edge_token_allowed"'))).toBe(true);
    const edge = await startServerProcess("edge", EDGE_MAIN, {
      ...baseEnv,
      TOLLGATE_EDGE_LISTEN: "127.0.0.1:0",
      TOLLGATE_CONTROL_PLANE_URL: c.url,
      TOLLGATE_EDGE_NAME: `edge-${names.id}`,
      // Workers (edge-workers.ts) read the same explicit token.
      TOLLGATE_EDGE_WORKERS: "2",
      TOLLGATE_EDGE_TOKEN: sharedToken,
    });
    try {
      const warning = edge.lines.find((l) => l.includes('"event":"legacy_edge_token"'));
      expect(warning).toBeDefined();
      expect(JSON.parse(warning ?? "{}").level).toBe(40);
      expect(edge.lines.join("\n")).not.toContain(sharedToken);
      // It serves: an unsigned call gets an AWS-format refusal from the edge itself.
      const res = await fetch(`${edge.url}/`, { method: "POST" });
      expect(res.status).toBe(403);
      expect(edge.lines.filter((l) => l.includes('"event":"legacy_edge_token"'))).toHaveLength(1);
    } finally {
      await edge.stop();
    }
  }, 120_000);
});
