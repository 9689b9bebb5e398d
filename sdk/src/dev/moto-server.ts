import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";
import { TollgateError } from "../tollgate-error.js";
import { signedAwsQuery } from "./aws-query.js";

/** Options for {@link startMotoServer}. */
export interface MotoServerOptions {
  /**
   * When true, moto starts with `INITIAL_NO_AUTH_ACTION_COUNT=3` and the three free actions are
   * spent creating an IAM user with an allow-all inline policy and an access key: from then on
   * moto verifies SigV4 signatures and IAM policy, and the returned keys are that user's.
   * When false, moto checks nothing and the keys are the dummy `test`/`test`.
   */
  verifySignatures: boolean;
  /** Interface to bind. Default `127.0.0.1`. */
  host?: string;
  /** File that receives moto's stdout and stderr (appended, directory created). Default: discarded. */
  logFile?: string;
  /** How long to wait for moto to answer HTTP, in milliseconds. Default 20000. */
  startTimeoutMs?: number;
  /** Executable to run. Default `moto_server`, looked up on PATH. */
  command?: string;
}

/** A running moto server; {@link MotoServer.close} stops it. */
export interface MotoServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  endpoint: string;
  /** Access key id that moto accepts (the bootstrap user's when verifying signatures). */
  accessKeyId: string;
  secretAccessKey: string;
  /** moto's account id, from the bootstrap user's ARN. */
  accountId: string;
  /** Kills moto's process group and waits for it to exit. Idempotent. */
  close(): Promise<void>;
}

interface ResolvedMotoServerOptions {
  verifySignatures: boolean;
  host: string;
  logFile: string | undefined;
  startTimeoutMs: number;
  command: string;
}

function resolveMotoServerOptions(options: MotoServerOptions): ResolvedMotoServerOptions {
  return {
    verifySignatures: options.verifySignatures,
    host: options.host ?? "127.0.0.1",
    logFile: options.logFile,
    startTimeoutMs: options.startTimeoutMs ?? 20_000,
    command: options.command ?? "moto_server",
  };
}

/** Free actions moto grants before it starts checking signatures: exactly the bootstrap's three calls. */
const BOOTSTRAP_ACTIONS = 3;
const DEMO_USER = "tollgate-demo";
const DUMMY_KEY = "test";
const DEFAULT_ACCOUNT_ID = "123456789012";
const STOP_GRACE_MS = 5_000;
const START_ATTEMPTS = 3;

/** moto exited before answering (for example, it lost the race for its port). */
class MotoExitedError extends TollgateError {}

/** Process groups of motos still running, killed if this process exits without closing them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Starts `moto_server` on a free port and, with `verifySignatures`, bootstraps an IAM identity
 * that moto then enforces. Fails with a {@link TollgateError} when `moto_server` is missing,
 * exits, or does not answer within `startTimeoutMs`.
 */
export async function startMotoServer(options: MotoServerOptions): Promise<MotoServer> {
  const resolved = resolveMotoServerOptions(options);
  let lastError: unknown;
  // The free-port probe can race another process for the port; moto then exits and we retry.
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await findFreePort(resolved.host);
    const running = spawnMoto(resolved, port);
    try {
      await waitUntilAnswering(running, resolved);
    } catch (error) {
      await running.close();
      lastError = error;
      if (error instanceof MotoExitedError && attempt < START_ATTEMPTS) continue;
      throw error;
    }
    try {
      const identity = resolved.verifySignatures
        ? await bootstrapIdentity(running.endpoint)
        : { accessKeyId: DUMMY_KEY, secretAccessKey: DUMMY_KEY, accountId: DEFAULT_ACCOUNT_ID };
      return { endpoint: running.endpoint, ...identity, close: running.close };
    } catch (error) {
      await running.close();
      throw error;
    }
  }
  throw lastError;
}

interface RunningMoto {
  endpoint: string;
  child: ChildProcess;
  /** Set once the process has exited (or failed to spawn). */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  close(): Promise<void>;
}

function spawnMoto(options: ResolvedMotoServerOptions, port: number): RunningMoto {
  let logFd: number | undefined;
  if (options.logFile !== undefined) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    logFd = openSync(options.logFile, "a");
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (options.verifySignatures) env.INITIAL_NO_AUTH_ACTION_COUNT = String(BOOTSTRAP_ACTIONS);
  else delete env.INITIAL_NO_AUTH_ACTION_COUNT;
  let child: ChildProcess;
  try {
    child = spawn(options.command, ["-H", options.host, "-p", String(port)], {
      env,
      // Its own process group, so close() can kill moto with anything it started.
      detached: true,
      stdio: ["ignore", logFd ?? "ignore", logFd ?? "ignore"],
    });
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const pid = child.pid;
  if (pid !== undefined) {
    liveGroups.add(pid);
    installExitHook();
  }
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (pid === undefined) return;
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(pid, "SIGTERM");
        const timer = setTimeout(() => killGroup(pid, "SIGKILL"), STOP_GRACE_MS);
        await exit;
        clearTimeout(timer);
      }
      // Anything moto itself started goes too.
      killGroup(pid, "SIGKILL");
      liveGroups.delete(pid);
    })();
    return closing;
  };
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return { endpoint: `http://${host}:${port}`, child, exit, close };
}

async function waitUntilAnswering(moto: RunningMoto, options: ResolvedMotoServerOptions): Promise<void> {
  const deadline = Date.now() + options.startTimeoutMs;
  let exited: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  void moto.exit.then((e) => {
    exited = e;
  });
  const seeLog = options.logFile === undefined ? "" : `; see ${options.logFile}`;
  for (;;) {
    if (exited !== undefined) {
      const notFound = (exited.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT" || exited.code === 127;
      if (notFound) {
        throw new TollgateError(
          "ERR_CONFIG",
          `${options.command} not found on PATH (install it with: pip install 'moto[server]')`,
          { cause: exited.error },
        );
      }
      const how = exited.error?.message ?? `code ${exited.code ?? exited.signal}`;
      throw new MotoExitedError("ERR_UNREACHABLE", `${options.command} exited (${how}) before answering${seeLog}`, {
        cause: exited.error,
      });
    }
    try {
      // Any HTTP answer means it is serving; /moto-api/ does not count as an AWS action.
      const response = await fetch(`${moto.endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() >= deadline) {
      throw new TollgateError(
        "ERR_UNREACHABLE",
        `${options.command} did not answer on ${moto.endpoint} within ${options.startTimeoutMs} ms${seeLog}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Finds a port that is free right now by listening on port 0. */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port === 0 ? reject(new Error("could not probe a free port")) : resolve(port)));
    });
  });
}

const ALLOW_ALL_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }],
});

/** Spends moto's free actions on a user, an allow-all policy and an access key. */
async function bootstrapIdentity(
  endpoint: string,
): Promise<{ accessKeyId: string; secretAccessKey: string; accountId: string }> {
  const iam = async (params: Record<string, string>): Promise<string> => {
    const response = await signedAwsQuery({
      endpoint,
      service: "iam",
      region: "us-east-1",
      accessKeyId: DUMMY_KEY,
      secretAccessKey: DUMMY_KEY,
      params: { ...params, Version: "2010-05-08" },
    });
    if (response.status !== 200) {
      const code = xmlText(response.body, "Code") ?? "";
      const message = xmlText(response.body, "Message") ?? "";
      throw new TollgateError(
        "ERR_UNREACHABLE",
        `moto bootstrap ${params.Action} failed: HTTP ${response.status} ${code} ${message}`.trimEnd(),
      );
    }
    return response.body;
  };
  const user = await iam({ Action: "CreateUser", UserName: DEMO_USER });
  const arn = xmlText(user, "Arn");
  const accountId = arn === undefined ? undefined : /^arn:aws:iam::(\d{12}):/.exec(arn)?.[1];
  await iam({
    Action: "PutUserPolicy",
    UserName: DEMO_USER,
    PolicyName: "tollgate-demo-allow-all",
    PolicyDocument: ALLOW_ALL_POLICY,
  });
  const key = await iam({ Action: "CreateAccessKey", UserName: DEMO_USER });
  const accessKeyId = xmlText(key, "AccessKeyId");
  const secretAccessKey = xmlText(key, "SecretAccessKey");
  if (accountId === undefined || accessKeyId === undefined || secretAccessKey === undefined) {
    throw new TollgateError("ERR_UNREACHABLE", "moto bootstrap: unexpected IAM response (no Arn or access key)");
  }
  return { accessKeyId, secretAccessKey, accountId };
}

function xmlText(xml: string, element: string): string | undefined {
  return new RegExp(`<${element}>([^<]*)</${element}>`).exec(xml)?.[1]?.trim();
}
