import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Redis } from "ioredis";

export const REPO_ROOT = resolve(import.meta.dirname, "..", "..");
export const CLI = join(REPO_ROOT, "sdk", "dist", "cli", "main.js");
export const NATS_URL = "nats://127.0.0.1:4222";
export const REDIS_URL = "redis://127.0.0.1:6379";

/** Unique names so parallel runs and leftovers never collide. */
export function uniqueNames(): { id: string; redisPrefix: string; stream: string; subjectPrefix: string } {
  const id = randomBytes(4).toString("hex");
  return { id, redisPrefix: `tgtest:${id}:`, stream: `TGTEST_${id.toUpperCase()}`, subjectPrefix: `tgtest_${id}` };
}

/** A running `tollgate dev` (control plane, edge, moto) in a temp TOLLGATE_HOME. */
export interface DevInstance {
  home: string;
  edgeUrl: string;
  apiUrl: string;
  /** The `export` lines `tollgate dev` printed, as env vars. */
  demoEnv: Record<string, string>;
  /** Everything printed on stdout so far. */
  stdout: string[];
  stderr: string[];
  /** Env that points the CLI and clients at this instance. */
  env: NodeJS.ProcessEnv;
  names: ReturnType<typeof uniqueNames>;
  /** Runs the tollgate CLI against this instance. */
  cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Every log file under TOLLGATE_HOME/logs, concatenated. */
  logs(): string;
  stop(): Promise<void>;
}

export function runProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? "");
  });
}

/**
 * Starts `tollgate dev --listen 127.0.0.1:0 --api 127.0.0.1:0` and waits for its exports.
 * `extraEnv` is added to the environment of `tollgate dev` (and so of its children).
 */
export async function startDev(extraArgs: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<DevInstance> {
  const names = uniqueNames();
  const home = mkdtempSync(join(tmpdir(), "tollgate-e2e-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TOLLGATE_HOME: home,
    TOLLGATE_NATS_URL: NATS_URL,
    TOLLGATE_REDIS_URL: REDIS_URL,
    TOLLGATE_REDIS_PREFIX: names.redisPrefix,
    TOLLGATE_AUDIT_STREAM: names.stream,
    TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
    AWS_ACCESS_KEY_ID: "",
    AWS_SECRET_ACCESS_KEY: "",
    AWS_SESSION_TOKEN: "",
    AWS_PROFILE: "",
    AWS_ENDPOINT_URL: "",
    ...extraEnv,
  };
  for (const k of [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
  ]) {
    delete env[k];
  }
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, "dev", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", ...extraArgs],
    { env, stdio: ["ignore", "pipe", "pipe"], detached: false },
  );
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (l) => stderr.push(l));
  const demoEnv: Record<string, string> = {};
  let edgeUrl = "";
  let apiUrl = "";
  await new Promise<void>((resolvePromise, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`tollgate dev not ready in 90s; stdout: ${stdout.join("\n")} stderr: ${stderr.join("\n")}`)),
      90_000,
    );
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tollgate dev exited ${code}; stderr: ${stderr.join("\n")}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      stdout.push(line);
      const ready = /^tollgate: ready edge=(\S+) api=(\S+)$/.exec(line);
      if (ready) {
        edgeUrl = ready[1] as string;
        apiUrl = ready[2] as string;
      }
      const exp = /^export ([A-Z_]+)=(.*)$/.exec(line);
      if (exp) demoEnv[exp[1] as string] = (exp[2] as string).replace(/^'(.*)'$/, "$1");
      if (edgeUrl !== "" && demoEnv.AWS_SESSION_TOKEN !== undefined && demoEnv.AWS_REGION !== undefined) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolvePromise();
      }
    });
  });
  const cliEnv: NodeJS.ProcessEnv = { ...env, TOLLGATE_API_URL: apiUrl };
  const instance: DevInstance = {
    home,
    edgeUrl,
    apiUrl,
    demoEnv,
    stdout,
    stderr,
    env: cliEnv,
    names,
    cli: (args, input) => runProcess(process.execPath, [CLI, ...args], cliEnv, input),
    logs() {
      const dir = join(home, "logs");
      return readdirSync(dir)
        .map((f) => readFileSync(join(dir, f), "utf8"))
        .join("\n");
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await cleanupNames(names);
      rmSync(home, { recursive: true, force: true });
    },
  };
  return instance;
}

/** Deletes the test's JetStream stream and Redis keys. */
export async function cleanupNames(names: ReturnType<typeof uniqueNames>): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(names.stream).catch(() => false);
  } finally {
    await nc.close();
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${names.redisPrefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
