// (d) Tollgate: a real control plane and edge from the built dist/, with their own TOLLGATE_HOME,
// Redis prefix and JetStream stream/subjects on the machine's NATS and Redis.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { spawnUntilReady, stopChild } from "./processes.mjs";

const run = promisify(execFile);
/** The checkout whose dist/ is measured (BENCH_REPO benchmarks another build, e.g. a `git archive` of main). */
export const REPO = resolve(process.env.BENCH_REPO ?? resolve(import.meta.dirname, "..", ".."));
const CLI = join(REPO, "sdk/dist/cli/main.js");
const CONTROL_PLANE = join(REPO, "control-plane/dist/main.js");
const EDGE = join(REPO, "edge-agent/dist/main.js");
export const NATS_URL = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const READY = /"event":"ready".*"url":"(http:\/\/[^"]+)"/;

/** Starts the control plane, registers one connection per upstream, issues credentials. */
export async function startTollgate({ upstreams, region = "us-east-1" }) {
  const id = randomBytes(4).toString("hex");
  const names = {
    redisPrefix: `tgbench:${id}:`,
    stream: `TGBENCH_${id.toUpperCase()}`,
    subjectPrefix: `tgbench_${id}`,
  };
  const home = mkdtempSync(join(tmpdir(), "tollgate-bench-"));
  const env = {
    ...process.env,
    TOLLGATE_HOME: home,
    TOLLGATE_NATS_URL: NATS_URL,
    TOLLGATE_REDIS_URL: REDIS_URL,
    TOLLGATE_REDIS_PREFIX: names.redisPrefix,
    TOLLGATE_AUDIT_STREAM: names.stream,
    TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
    TOLLGATE_API_LISTEN: "127.0.0.1:0",
    TOLLGATE_EDGE_LISTEN: "127.0.0.1:0",
    TOLLGATE_EDGE_NAME: "bench-edge",
  };
  const t = { names, home, env, controlPlane: undefined, edge: undefined, apiUrl: "", edgeUrl: "", credentials: {} };
  try {
    // BENCH_CP_NODE_FLAGS: node/V8 flags for the control plane only (e.g. "--cpu-prof").
    const cpFlags = (process.env.BENCH_CP_NODE_FLAGS ?? "").split(" ").filter(Boolean);
    t.controlPlane = spawnUntilReady(process.execPath, [...cpFlags, CONTROL_PLANE], {
      env,
      readyRe: READY,
      name: "control plane",
    });
    t.apiUrl = (await t.controlPlane.ready)[1];
    const cli = async (args) => (await run(process.execPath, [CLI, ...args, "--api", t.apiUrl], { env })).stdout;
    for (const [name, endpoint] of Object.entries(upstreams)) {
      await cli([
        "connection",
        "create",
        name,
        "--region",
        region,
        "--upstream-endpoint",
        endpoint,
        "--upstream-access-key-id",
        "AKIABENCHUPSTREAM000",
        "--upstream-secret-access-key",
        "bench-upstream-secret",
        "--account-id",
        "123456789012",
      ]);
      t.credentials[name] = JSON.parse(
        await cli([
          "credentials",
          "issue",
          "--principal",
          "bench-agent",
          "--connection",
          name,
          "--ttl",
          "2h",
          "--format",
          "json",
        ]),
      );
    }
    // The edge enrolls on its first start; restarts (startEdge) reuse $TOLLGATE_HOME/edge/enrollment.json.
    // A BENCH_REPO build from before enrollment has no such command and uses edge.token instead.
    try {
      t.env.TOLLGATE_EDGE_ENROLL_TOKEN = JSON.parse(
        await cli(["edge", "enroll-token", "--name", t.env.TOLLGATE_EDGE_NAME, "--json"]),
      ).token;
    } catch (err) {
      process.stderr.write(`bench: no enrollment token (a build without enrollment?): ${err.message}\n`);
    }
    await startEdge(t, []);
    return t;
  } catch (err) {
    await stopTollgate(t);
    throw err;
  }
}

/**
 * `env` as every edge launcher passes it (sdk malloc-tunables.ts: the glibc malloc settings), when
 * the measured build has that module; an older build (BENCH_REPO) gets `env` unchanged.
 */
export async function edgeLaunchEnv(env) {
  try {
    const m = await import(pathToFileURL(join(REPO, "sdk", "dist", "malloc-tunables.js")).href);
    return m.withEdgeMallocTunables(env);
  } catch {
    return env;
  }
}

/** (Re)starts the edge with extra node flags (e.g. --cpu-prof); the previous one is stopped. */
export async function startEdge(t, nodeFlags) {
  await stopChild(t.edge);
  // BENCH_EDGE_NODE_FLAGS: node/V8 flags for the edge only (e.g. "--max-semi-space-size=8").
  const extraFlags = (process.env.BENCH_EDGE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  t.edge = spawnUntilReady(process.execPath, [...extraFlags, ...nodeFlags, EDGE], {
    env: await edgeLaunchEnv({ ...t.env, TOLLGATE_CONTROL_PLANE_URL: t.apiUrl }),
    readyRe: READY,
    name: "edge",
  });
  t.edgeUrl = (await t.edge.ready)[1];
  // Which build was measured: the tree changes under a running bench when others rebuild.
  t.edge.build = { startedAt: new Date().toISOString(), distModified: statSync(EDGE).mtime.toISOString() };
  return t.edge;
}

function requireFromWorkspace(pkg) {
  // nats.js is a dependency of the workspaces, not of the root.
  return pathToFileURL(createRequire(join(REPO, "control-plane/package.json")).resolve(pkg)).href;
}

/** Number of audit events in the bench stream. */
export async function auditEventCount(t) {
  const { connect } = await import(requireFromWorkspace("@nats-io/transport-node"));
  const { jetstreamManager } = await import(requireFromWorkspace("@nats-io/jetstream"));
  const nc = await connect({ servers: NATS_URL });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(t.names.stream);
    return info.state.messages;
  } finally {
    await nc.close();
  }
}

/** Stops edge and control plane, deletes the stream, the Redis keys and the temp home. */
export async function stopTollgate(t) {
  await stopChild(t.edge);
  await stopChild(t.controlPlane);
  try {
    const { connect } = await import(requireFromWorkspace("@nats-io/transport-node"));
    const { jetstreamManager } = await import(requireFromWorkspace("@nats-io/jetstream"));
    const nc = await connect({ servers: NATS_URL });
    try {
      await (await jetstreamManager(nc)).streams.delete(t.names.stream).catch(() => false);
    } finally {
      await nc.close();
    }
  } catch (err) {
    process.stderr.write(`bench: could not delete stream ${t.names.stream}: ${err.message}\n`);
  }
  try {
    const { Redis } = await import("ioredis");
    const redis = new Redis(REDIS_URL, { lazyConnect: true });
    await redis.connect();
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${t.names.redisPrefix}*`, "COUNT", 500);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
  } catch (err) {
    process.stderr.write(`bench: could not delete Redis keys ${t.names.redisPrefix}*: ${err.message}\n`);
  }
  rmSync(t.home, { recursive: true, force: true });
}
