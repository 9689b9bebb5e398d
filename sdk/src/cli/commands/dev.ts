import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createControlPlaneClient } from "../../control-plane-client.js";
import { type MotoServer, startMotoServer } from "../../dev/moto-server.js";
import { withEdgeMallocTunables } from "../../malloc-tunables.js";
import { describeExit, ServerChild } from "../child-process.js";
import { CliError, describeError } from "../cli-error.js";
import { type DevState, homePaths, readAdminTokenFile } from "../config.js";
import { exportLine, formatDevReady, formatEventLine, toIssuedCredential } from "../format.js";
import type { CliIo } from "../io.js";
import { anyReachable, redactUrl } from "../tcp-check.js";

/** `--upstream-*` flags of `tollgate dev`. */
export interface UpstreamFlags {
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
}

/** AWS credentials found in the environment. */
export interface AmbientAwsCredentials {
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  sessionToken?: string | undefined;
}

/** Where the dev connection forwards to. */
export type UpstreamChoice =
  | {
      kind: "explicit" | "aws";
      endpoint: string;
      accessKeyId: string;
      secretAccessKey: string;
      sessionToken: string;
    }
  | { kind: "moto" };

/** Explicit flags (all three) > AWS credentials in the environment > the moto demo. */
export function chooseUpstream(flags: UpstreamFlags, ambient: AmbientAwsCredentials): UpstreamChoice {
  const given = [flags.endpoint, flags.accessKeyId, flags.secretAccessKey].filter((v) => v !== undefined).length;
  if (given === 3) {
    return {
      kind: "explicit",
      endpoint: flags.endpoint as string,
      accessKeyId: flags.accessKeyId as string,
      secretAccessKey: flags.secretAccessKey as string,
      sessionToken: "",
    };
  }
  if (given > 0) {
    throw new CliError(
      "--upstream-endpoint, --upstream-access-key-id and --upstream-secret-access-key must be given together",
    );
  }
  if (ambient.accessKeyId && ambient.secretAccessKey) {
    return {
      kind: "aws",
      endpoint: "",
      accessKeyId: ambient.accessKeyId,
      secretAccessKey: ambient.secretAccessKey,
      sessionToken: ambient.sessionToken ?? "",
    };
  }
  return { kind: "moto" };
}

/** Options of `tollgate dev`. */
export interface DevOptions {
  home: string;
  natsUrl: string;
  redisUrl: string;
  region: string;
  /** Edge listen address, HOST:PORT. */
  edgeListen: string;
  /** Control-plane listen address, HOST:PORT. */
  apiListen: string;
  /** HTTPS_PROXY listen address of the edge, HOST:PORT; proxy mode is off when undefined. */
  proxyListen?: string | undefined;
  upstream: UpstreamFlags;
  ambientAws: AmbientAwsCredentials;
  /** Base environment of the children. */
  childEnv: NodeJS.ProcessEnv;
  /** Control-plane entry point; default `@tollgate/control-plane/main`. */
  controlPlaneMain?: string;
  /** Edge entry point; default `@tollgate/edge-agent/main`. */
  edgeMain?: string;
  /** Aborted on SIGINT/SIGTERM: everything is stopped and runDev resolves. */
  signal: AbortSignal;
  /** TCP timeout of the NATS/Redis pre-flight, ms. Default 2000. */
  preflightTimeoutMs?: number;
}

const DEMO_PRINCIPAL = "demo-agent";
const DEV_CONNECTION = "default";
const DEV_EDGE = "dev-edge";
const DEMO_TTL_SECONDS = 12 * 3600;

function resolveEntryPoint(specifier: string): string {
  try {
    return fileURLToPath(import.meta.resolve(specifier));
  } catch (cause) {
    throw new CliError(`cannot find ${specifier} (build it with: npm run build): ${describeError(cause)}`);
  }
}

function checkListen(value: string, flag: string): string {
  if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(value)) {
    throw new CliError(`invalid ${flag} "${value}" (use HOST:PORT, e.g. 127.0.0.1:8787)`);
  }
  return value;
}

/**
 * Runs the local all-in-one: checks NATS and Redis, picks an upstream (starting moto if there
 * is none), starts the control plane, registers the `default` connection, starts an edge,
 * issues a demo credential, prints how to use it and tails audit events until `signal` aborts.
 * Throws {@link CliError} on start-up failure or when a child dies.
 */
export async function runDev(options: DevOptions, io: CliIo): Promise<void> {
  const edgeListen = checkListen(options.edgeListen, "--listen");
  const apiListen = checkListen(options.apiListen, "--api");
  const proxyListen =
    options.proxyListen === undefined ? undefined : checkListen(options.proxyListen, "--proxy-listen");
  const upstreamChoice = chooseUpstream(options.upstream, options.ambientAws);
  const controlPlaneMain = options.controlPlaneMain ?? resolveEntryPoint("@tollgate/control-plane/main");
  const edgeMain = options.edgeMain ?? resolveEntryPoint("@tollgate/edge-agent/main");
  const { signal } = options;

  const preflightMs = options.preflightTimeoutMs ?? 2_000;
  const [natsOk, redisOk] = await Promise.all([
    anyReachable(options.natsUrl, 4222, preflightMs),
    anyReachable(options.redisUrl, 6379, preflightMs),
  ]);
  if (!natsOk) throw new CliError(`cannot reach NATS at ${redactUrl(options.natsUrl)}`);
  if (!redisOk) throw new CliError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);

  const paths = homePaths(options.home);
  mkdirSync(options.home, { recursive: true, mode: 0o700 });
  mkdirSync(paths.logs, { recursive: true, mode: 0o700 });

  // Stopped in reverse order of start: edge, control plane, moto.
  const stack: Array<{ stop(): Promise<void> }> = [];
  const tail = new AbortController();
  try {
    let upstream: { endpoint: string; accessKeyId: string; secretAccessKey: string; sessionToken: string };
    let accountId = "";
    if (upstreamChoice.kind === "moto") {
      io.err(
        `tollgate: no AWS credentials given, starting moto_server as a demo upstream (log ${join(paths.logs, "moto.log")})\n`,
      );
      const moto: MotoServer = await startMotoServer({ verifySignatures: true, logFile: join(paths.logs, "moto.log") });
      stack.push({ stop: () => moto.close() });
      upstream = {
        endpoint: moto.endpoint,
        accessKeyId: moto.accessKeyId,
        secretAccessKey: moto.secretAccessKey,
        sessionToken: "",
      };
      accountId = moto.accountId;
    } else {
      upstream = upstreamChoice;
      const where = upstreamChoice.kind === "aws" ? "real AWS" : upstreamChoice.endpoint;
      io.err(`tollgate: upstream ${where} with access key ${upstreamChoice.accessKeyId}\n`);
    }
    if (signal.aborted) return;

    const controlPlane = await ServerChild.start({
      name: "control plane",
      modulePath: controlPlaneMain,
      env: { ...options.childEnv, TOLLGATE_HOME: options.home, TOLLGATE_API_LISTEN: apiListen },
      logFile: join(paths.logs, "control-plane.log"),
      signal,
    });
    stack.push(controlPlane);

    const client = createControlPlaneClient({ baseUrl: controlPlane.url, token: readAdminTokenFile(options.home) });
    await client.connections.createConnection({
      connection: {
        name: DEV_CONNECTION,
        region: options.region,
        upstreamEndpoint: upstream.endpoint,
        upstreamAccessKeyId: upstream.accessKeyId,
        accountId,
      },
      upstreamSecretAccessKey: upstream.secretAccessKey,
      upstreamSessionToken: upstream.sessionToken,
      allowReplace: true,
    });

    // The dev edge enrolls like any other: a fresh one-time token per run (the dev Redis may have
    // forgotten an earlier enrollment, so the saved one is dropped).
    const { token: enrollToken } = await client.edgeAdmin.createEnrollmentToken({
      edgeName: DEV_EDGE,
      labels: { env: "dev" },
      ttlSeconds: 600n,
    });
    rmSync(join(options.home, "edge", "enrollment.json"), { force: true });
    const edge = await ServerChild.start({
      name: "edge",
      modulePath: edgeMain,
      env: withEdgeMallocTunables({
        ...options.childEnv,
        TOLLGATE_HOME: options.home,
        TOLLGATE_EDGE_LISTEN: edgeListen,
        TOLLGATE_CONTROL_PLANE_URL: controlPlane.url,
        TOLLGATE_EDGE_NAME: DEV_EDGE,
        TOLLGATE_EDGE_ENROLL_TOKEN: enrollToken,
        TOLLGATE_EDGE_ENROLL_TOKEN_FILE: "",
        TOLLGATE_EDGE_TOKEN: "",
        // Proxy mode follows the flag, not whatever the shell had.
        TOLLGATE_EDGE_PROXY_LISTEN: proxyListen ?? "",
      }),
      logFile: join(paths.logs, "edge.log"),
      signal,
    });
    stack.push(edge);
    const proxyUrl = edge.eventUrls.get("proxy-ready");
    if (proxyListen !== undefined && proxyUrl === undefined) {
      throw new CliError(`edge did not report its proxy listening on ${proxyListen}, see ${edge.logFile}`);
    }

    const credential = toIssuedCredential(
      await client.credentials.issueCredential({
        principal: DEMO_PRINCIPAL,
        connection: DEV_CONNECTION,
        ttlSeconds: BigInt(DEMO_TTL_SECONDS),
      }),
    );
    const state: DevState = { edgeUrl: edge.url, apiUrl: controlPlane.url };
    writeFileSync(paths.devState, `${JSON.stringify(state, null, 2)}\n`);
    chmodSync(paths.devState, 0o600);
    if (signal.aborted) return;

    // One write, so whoever parses the banner sees the proxy lines with the rest.
    io.out(
      formatDevReady({ edgeUrl: edge.url, apiUrl: controlPlane.url, region: options.region, credential }) +
        (proxyUrl === undefined ? "" : formatProxyExports(proxyUrl, join(options.home, "ca.pem"))),
    );
    void tailForever(client, tail.signal, io);

    const died = await firstExit([edge, controlPlane], signal);
    if (died !== undefined) {
      throw new CliError(`${died.child.name} exited (${describeExit(died.exit)}), see ${died.child.logFile}`);
    }
  } catch (error) {
    // An interrupted start-up is a normal exit.
    if (signal.aborted) return;
    throw error;
  } finally {
    tail.abort();
    for (const item of stack.reverse()) await item.stop().catch(() => undefined);
  }
}

/**
 * The extra banner lines of `tollgate dev --proxy-listen`: how to reach the edge as an
 * HTTPS proxy (for tools with hard-coded AWS endpoints) and trust the Tollgate CA.
 */
export function formatProxyExports(proxyUrl: string, caFile: string): string {
  return `${[
    "# HTTPS_PROXY mode (default AWS endpoints; unset AWS_ENDPOINT_URL to use it):",
    exportLine("HTTPS_PROXY", proxyUrl),
    exportLine("AWS_CA_BUNDLE", caFile),
    exportLine("NODE_EXTRA_CA_CERTS", caFile),
  ].join("\n")}\n`;
}

/** The first child to exit, or undefined once `signal` aborts. */
async function firstExit(
  children: ServerChild[],
  signal: AbortSignal,
): Promise<{ child: ServerChild; exit: Awaited<ServerChild["exited"]> } | undefined> {
  if (signal.aborted) return undefined;
  const aborted = new Promise<undefined>((resolve) =>
    signal.addEventListener("abort", () => resolve(undefined), { once: true }),
  );
  return await Promise.race([aborted, ...children.map((child) => child.exited.then((exit) => ({ child, exit })))]);
}

/** Prints audit events until aborted, reconnecting after errors (with a growing pause). */
async function tailForever(
  client: ReturnType<typeof createControlPlaneClient>,
  signal: AbortSignal,
  io: CliIo,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      for await (const response of client.audit.tailEvents({}, { timeoutMs: 0, signal })) {
        failures = 0;
        if (response.event !== undefined) io.out(`${formatEventLine(response.event)}\n`);
      }
    } catch (error) {
      if (signal.aborted) return;
      failures++;
      if (failures === 1) io.err(`tollgate: audit tail interrupted: ${describeError(error)}; retrying\n`);
    }
    await sleep(Math.min(1_000 * 2 ** Math.min(failures, 4), 10_000), undefined, { signal }).catch(() => undefined);
  }
}
