#!/usr/bin/env node
// The edge agent process: reads its environment (only here), wires the parts, listens.
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import type * as http from "node:http";
import * as https from "node:https";
import { availableParallelism, homedir, hostname } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect } from "@nats-io/transport-node";
import { trace } from "@opentelemetry/api";
import type { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import {
  type ControlPlaneClient,
  createControlPlaneClient,
  DEFAULT_AUDIT_SUBJECT_PREFIX,
  EDGE_GLIBC_TUNABLES,
  missingEdgeMallocTunables,
  withEdgeMallocTunables,
} from "@tollgate/sdk";
import { pino } from "pino";
import { AuditCallRecorder, AuditRecorder } from "./audit-recorder.js";
import { awsModels } from "./aws-models.js";
import { EdgeConfigSource } from "./edge-config.js";
import { loadOrEnroll } from "./edge-enrollment.js";
import { createEdgeRequestHandler, createEdgeServer, handleExpectContinue } from "./edge-server.js";
import { loadOrCreateEdgeSigningKey } from "./edge-signing-key.js";
import {
  serveWorkerJournal,
  serveWorkerUpstream,
  WorkerJournalClient,
  WorkerUpstreamResolver,
} from "./edge-workers.js";
import { createProxyServer, DEFAULT_PROXY_ALLOWED_HOSTS } from "./proxy-server.js";
import type { TollgateCa } from "./tollgate-ca.js";
import { UpstreamCredentialResolver } from "./upstream-credentials.js";
import { controlPlaneWebIdentityExchanger } from "./web-identity-sts.js";

function fail(message: string): never {
  process.stderr.write(`tollgate-edge: ${message}\n`);
  process.exit(1);
}

function env(name: string, fallback: string): string {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v;
}

function hostPort(name: string, fallback: string): { host: string; port: number } {
  const raw = env(name, fallback);
  const i = raw.lastIndexOf(":");
  const port = Number(raw.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) fail(`${name} must be HOST:PORT, got "${raw}"`);
  return { host: raw.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

const home = env("TOLLGATE_HOME", join(homedir(), ".tollgate"));
const listen = hostPort("TOLLGATE_EDGE_LISTEN", "127.0.0.1:8787");
const controlPlaneUrl = env("TOLLGATE_CONTROL_PLANE_URL", "http://127.0.0.1:8788");
const natsUrl = env("TOLLGATE_NATS_URL", "nats://127.0.0.1:4222");
/** One URL or a comma-separated list (a NATS cluster). */
const natsServers = natsUrl.split(",").map((s) => s.trim());
const logLevel = env("TOLLGATE_LOG_LEVEL", "info");
// HTTPS_PROXY mode: off unless TOLLGATE_EDGE_PROXY_LISTEN is set.
const proxyListen =
  env("TOLLGATE_EDGE_PROXY_LISTEN", "") === "" ? undefined : hostPort("TOLLGATE_EDGE_PROXY_LISTEN", "");
const proxyAllowedHosts = env("TOLLGATE_EDGE_PROXY_ALLOWED_HOSTS", DEFAULT_PROXY_ALLOWED_HOSTS.join(","))
  .split(",")
  .map((h) => h.trim())
  .filter((h) => h !== "");
for (const pattern of proxyAllowedHosts) {
  if (!/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(pattern)) {
    fail(`TOLLGATE_EDGE_PROXY_ALLOWED_HOSTS: "${pattern}" is not a host name or *.domain pattern`);
  }
}
// Endpoint mode over TLS: both files or neither.
const tlsCertFile = env("TOLLGATE_EDGE_TLS_CERT_FILE", "");
const tlsKeyFile = env("TOLLGATE_EDGE_TLS_KEY_FILE", "");
if ((tlsCertFile === "") !== (tlsKeyFile === "")) {
  fail("TOLLGATE_EDGE_TLS_CERT_FILE and TOLLGATE_EDGE_TLS_KEY_FILE must be set together");
}
function readTlsFile(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    return fail(`${name}: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
const tlsFiles =
  tlsCertFile === ""
    ? undefined
    : {
        cert: readTlsFile("TOLLGATE_EDGE_TLS_CERT_FILE", tlsCertFile),
        key: readTlsFile("TOLLGATE_EDGE_TLS_KEY_FILE", tlsKeyFile),
      };
// Durable audit journal (write-ahead, fsynced before each call is forwarded).
const journalDir = env("TOLLGATE_EDGE_JOURNAL_DIR", join(home, "edge", "journal"));
const journalMaxBytesRaw = env("TOLLGATE_EDGE_JOURNAL_MAX_BYTES", String(1024 ** 3));
const journalMaxBytes = Number(journalMaxBytesRaw);
if (!Number.isInteger(journalMaxBytes) || journalMaxBytes < 16 * 1024 * 1024) {
  fail(`TOLLGATE_EDGE_JOURNAL_MAX_BYTES must be an integer of at least 16777216, got "${journalMaxBytesRaw}"`);
}
// Fail-open switch: "" (default: every connection fails closed), "*" or a comma-separated list.
const failOpenRaw = env("TOLLGATE_EDGE_AUDIT_FAIL_OPEN", "");
const failOpenConnections =
  failOpenRaw === "*"
    ? ("*" as const)
    : failOpenRaw
        .split(",")
        .map((c) => c.trim())
        .filter((c) => c !== "");
// OpenTelemetry traces: on when an OTLP endpoint is set (the standard OTEL_* variables; the
// exporter, sampler and batch processor read theirs). Off, calls still get a trace id.
const otlpEndpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", env("OTEL_EXPORTER_OTLP_ENDPOINT", ""));
const tracingOn =
  otlpEndpoint !== "" &&
  env("OTEL_SDK_DISABLED", "false").toLowerCase() !== "true" &&
  env("OTEL_TRACES_EXPORTER", "otlp") !== "none";
if (tracingOn) {
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = env(name, "http/json");
    if (protocol !== "http/json") fail(`${name}: only http/json is supported, got "${protocol}"`);
  }
}
// Enrollment (preferred): a one-time token from `tollgate edge enroll-token`, used once; the
// enrolled state in $TOLLGATE_HOME/edge/enrollment.json makes later starts need no token.
let enrollToken = env("TOLLGATE_EDGE_ENROLL_TOKEN", "");
const enrollTokenFile = env("TOLLGATE_EDGE_ENROLL_TOKEN_FILE", "");
if (enrollToken === "" && enrollTokenFile !== "") {
  try {
    enrollToken = readFileSync(enrollTokenFile, "utf8").trim();
  } catch (err) {
    fail(
      `TOLLGATE_EDGE_ENROLL_TOKEN_FILE: cannot read ${enrollTokenFile}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
const configuredEdgeName = env("TOLLGATE_EDGE_NAME", "") === "" ? undefined : env("TOLLGATE_EDGE_NAME", "");
// The edge's own AWS credentials, for connections whose credential source is "edge" (and as the
// base of their AssumeRole). Only the environment: the SDK's credential-provider chain is not a
// dependency of the edge.
const edgeAwsAccessKeyId = env("AWS_ACCESS_KEY_ID", "");
const edgeAwsSecretAccessKey = env("AWS_SECRET_ACCESS_KEY", "");
const edgeAwsSessionToken = env("AWS_SESSION_TOKEN", "");
const edgeAwsCredentials =
  edgeAwsAccessKeyId !== "" && edgeAwsSecretAccessKey !== ""
    ? {
        accessKeyId: edgeAwsAccessKeyId,
        secretAccessKey: edgeAwsSecretAccessKey,
        ...(edgeAwsSessionToken !== "" ? { sessionToken: edgeAwsSessionToken } : {}),
      }
    : undefined;

// Worker processes (see edge-workers.ts): default one per core but one, which is left to the
// primary (journal, shipping); so a single process on one or two cores, where a worker's IPC
// round trips cost more CPU per call than they gain. 1 = a single process. The primary does
// everything below up to the journal before it forks, so workers find the signing key, the
// enrollment and the CA on disk and never enroll or create anything themselves.
const workersRaw = env("TOLLGATE_EDGE_WORKERS", String(Math.max(1, availableParallelism() - 1)));
const workerCount = Number(workersRaw);
if (!Number.isInteger(workerCount) || workerCount < 1 || workerCount > 64) {
  fail(`TOLLGATE_EDGE_WORKERS must be an integer from 1 to 64, got "${workersRaw}"`);
}
// Object-body SHA-256s in the audit record (edge-server.ts `objectDigests`).
const objectDigestsRaw = env("TOLLGATE_EDGE_OBJECT_DIGESTS", "on");
if (objectDigestsRaw !== "on" && objectDigestsRaw !== "off") {
  fail(`TOLLGATE_EDGE_OBJECT_DIGESTS must be "on" or "off", got "${objectDigestsRaw}"`);
}
/** This process serves requests (a worker, or the only process). */
const serves = cluster.isWorker || workerCount === 1;
/** This process owns the journal, the shipper and the checkpoint key (the primary, or the only process). */
const journals = cluster.isPrimary;

// Load the AWS models' routing index now, not on the first call (only where requests are served);
// each service's operations are read when a request first needs them (aws-models.ts).
if (serves) awsModels();

// Fail fast with one line if NATS is unreachable; the audit shipper keeps its own connection.
if (journals) {
  await connect({ servers: natsServers, name: "tollgate-edge-probe" })
    .then((probe) => probe.close())
    .catch(() => fail(`cannot reach NATS at ${natsUrl}`));
}

// The Ed25519 key signs audit checkpoints and, once enrolled, every control-plane request.
const signingKeyFile = join(home, "edge", "signing-key.json");
const signingKey = await loadOrCreateEdgeSigningKey(signingKeyFile).catch((err: unknown) =>
  fail(
    `cannot load or create the edge signing key ${signingKeyFile}: ${err instanceof Error ? err.message : String(err)}`,
  ),
);
const enrollmentFile = join(home, "edge", "enrollment.json");
const enrollment = await loadOrEnroll({
  file: enrollmentFile,
  key: signingKey,
  enrollToken: enrollToken === "" ? undefined : enrollToken,
  edgeName: configuredEdgeName,
  client: createControlPlaneClient({ baseUrl: controlPlaneUrl, timeoutMs: 10_000 }),
}).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));

let client: ControlPlaneClient;
let edgeName: string;
let legacyToken = false;
if (enrollment !== undefined) {
  edgeName = enrollment.edgeName;
  client = createControlPlaneClient({
    baseUrl: controlPlaneUrl,
    edgeAuth: { edgeName, key: signingKey },
    timeoutMs: 10_000,
  });
} else {
  // Not enrolled and no enrollment token. The shared edge token is a legacy/dev path, taken only
  // when TOLLGATE_EDGE_TOKEN is set explicitly (never read from $TOLLGATE_HOME/edge.token), and
  // the control plane refuses it unless TOLLGATE_ALLOW_SHARED_EDGE_TOKEN=true.
  const edgeToken = env("TOLLGATE_EDGE_TOKEN", "");
  if (edgeToken === "") {
    fail(
      `not enrolled (no ${enrollmentFile}): set TOLLGATE_EDGE_ENROLL_TOKEN (or TOLLGATE_EDGE_ENROLL_TOKEN_FILE) to a one-time token from "tollgate edge enroll-token"`,
    );
  }
  legacyToken = true;
  edgeName = configuredEdgeName ?? hostname();
  client = createControlPlaneClient({ baseUrl: controlPlaneUrl, token: edgeToken, timeoutMs: 10_000 });
}

const logger = pino({
  level: logLevel,
  base: { service: "tollgate-edge", edge: edgeName, ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) },
});

// glibc malloc settings are read only at start-up (see sdk malloc-tunables.ts): without them a
// large transfer costs 1-2 CPU-seconds more per GiB and more memory is retained. Launchers set
// them (the primary for its workers); a serving process started without them says so.
const missingTunables = process.platform === "linux" ? missingEdgeMallocTunables(process.env.GLIBC_TUNABLES) : [];
if (serves && missingTunables.length > 0) {
  logger.warn(
    { event: "malloc_tunable_missing", missing: missingTunables, recommended: `GLIBC_TUNABLES=${EDGE_GLIBC_TUNABLES}` },
    "GLIBC_TUNABLES lacks the edge's malloc settings; large transfers will cost more CPU and memory",
  );
}
let tracerProvider: BasicTracerProvider | undefined;
if (tracingOn) {
  // Loaded only when tracing is on: importing the SDK costs start-up time every process would pay.
  const [{ OTLPTraceExporter }, { detectResources, envDetector, resourceFromAttributes }, sdk] = await Promise.all([
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace-base"),
  ]);
  tracerProvider = new sdk.BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "tollgate-edge", "service.instance.id": edgeName }).merge(
      detectResources({ detectors: [envDetector] }),
    ),
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter())],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  logger.info({ event: "tracing", endpoint: otlpEndpoint }, "exporting OpenTelemetry traces");
}
// Said once, by the primary.
if (journals && legacyToken) {
  logger.warn(
    { event: "legacy_edge_token" },
    "using the shared legacy edge token (TOLLGATE_EDGE_TOKEN); enroll this edge instead",
  );
} else if (journals) {
  logger.info({ event: "edge_enrolled", keyId: signingKey.keyId }, "authenticating as an enrolled edge");
}
const config = new EdgeConfigSource({ client, edgeName, logger });
await config.start().catch((err: unknown) => {
  const why = err instanceof Error ? err.message : String(err);
  if (legacyToken && ConnectError.from(err).code === Code.Unauthenticated) {
    fail(
      `the control plane at ${controlPlaneUrl} refused the shared edge token (TOLLGATE_EDGE_TOKEN; accepted only with TOLLGATE_ALLOW_SHARED_EDGE_TOKEN=true there): enroll this edge with TOLLGATE_EDGE_ENROLL_TOKEN instead`,
    );
  }
  fail(`cannot get configuration from the control plane at ${controlPlaneUrl}: ${why}`);
});
if (legacyToken && journals) {
  await client.edge
    .registerEdgeKey({ edgeName, publicKeyPem: signingKey.publicKeyPem })
    .catch((err: unknown) =>
      fail(`cannot register the edge key with the control plane: ${err instanceof Error ? err.message : String(err)}`),
    );
}
const subjectPrefix = (): string => config.snapshot.auditSubjectPrefix || DEFAULT_AUDIT_SUBJECT_PREFIX;
let journalRecorder: AuditRecorder | undefined;
if (journals) {
  journalRecorder = await AuditRecorder.open({
    dir: journalDir,
    connect: () => connect({ servers: natsServers, name: `tollgate-edge-${edgeName}-shipper`, reconnect: false }),
    edge: edgeName,
    signingKey,
    subjectPrefix,
    failOpenConnections,
    maxBytes: journalMaxBytes,
    logger,
  }).catch((err: unknown) =>
    fail(`cannot open the audit journal in ${journalDir}: ${err instanceof Error ? err.message : String(err)}`),
  );
}

// One AssumeRole session cache per edge: the primary's (workers ask it, see edge-workers.ts).
const localUpstream = new UpstreamCredentialResolver({ edgeCredentials: edgeAwsCredentials, logger });

let ca: TollgateCa | undefined;
if (proxyListen !== undefined) {
  // Created by the primary before any worker starts; workers load the same files.
  const caKeyFile = join(home, "edge", "ca-key.pem");
  // Imported only in proxy mode: @peculiar/x509 and its dependencies cost every process ≈ 4 MiB of heap.
  const { TollgateCa } = await import("./tollgate-ca.js");
  ca = await TollgateCa.loadOrCreate({ keyFile: caKeyFile, certFile: join(home, "ca.pem") }).catch((err: unknown) =>
    fail(`cannot load or create the Tollgate CA (${caKeyFile}): ${err instanceof Error ? err.message : String(err)}`),
  );
}

function listenOn(s: http.Server, at: { host: string; port: number }, scheme: string): Promise<string> {
  return new Promise((resolve) => {
    s.on("error", (err) => fail(`cannot listen on ${at.host}:${at.port}: ${err.message}`));
    s.listen(at.port, at.host, () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : at.port;
      const host = at.host.includes(":") ? `[${at.host}]` : at.host;
      resolve(`${scheme}://${host}:${port}`);
    });
  });
}

/** What a worker tells the primary once it listens. */
interface WorkerReady {
  tollgate: "worker-ready";
  url: string;
  proxyUrl?: string;
}

if (serves) {
  const recorder: AuditCallRecorder =
    journalRecorder ??
    new AuditCallRecorder(
      { subjectPrefix, failOpenConnections, logger },
      // The primary is gone: exit at once rather than answer calls that cannot be journaled.
      new WorkerJournalClient(process, () => process.exit(1)),
    );
  const edgeOptions = {
    config: () => config.snapshot,
    refreshConfig: () => config.refreshIfOlderThan(500),
    recorder,
    edgeName,
    logger,
    objectDigests: objectDigestsRaw === "on",
    webIdentity: controlPlaneWebIdentityExchanger(client, edgeName),
    upstreamCredentials: cluster.isWorker ? new WorkerUpstreamResolver(process, localUpstream) : localUpstream,
  };
  const handler = createEdgeRequestHandler(edgeOptions);
  let server: http.Server;
  if (tlsFiles === undefined) {
    server = createEdgeServer(edgeOptions);
  } else {
    try {
      server = https.createServer({ ...tlsFiles, keepAlive: true, requestTimeout: 0 }, handler);
      handleExpectContinue(server, handler);
    } catch (err) {
      fail(
        `TOLLGATE_EDGE_TLS_CERT_FILE/TOLLGATE_EDGE_TLS_KEY_FILE: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    server.on("tlsClientError", () => {});
  }
  let proxy: http.Server | undefined;
  if (ca !== undefined) proxy = createProxyServer({ handler, ca, allowedHosts: proxyAllowedHosts, logger });

  // The proxy's ready line comes first: whoever waits for "ready" has both addresses by then.
  let proxyUrl: string | undefined;
  if (proxy !== undefined && proxyListen !== undefined) {
    proxyUrl = await listenOn(proxy, proxyListen, "http");
    if (cluster.isPrimary) {
      logger.info({ event: "proxy-ready", url: proxyUrl, caFile: join(home, "ca.pem") }, "proxy listening");
    }
  }
  const edgeUrl = await listenOn(server, listen, tlsFiles === undefined ? "http" : "https");
  if (cluster.isPrimary) logger.info({ event: "ready", url: edgeUrl }, "edge listening");
  else {
    const ready: WorkerReady = { tollgate: "worker-ready", url: edgeUrl, ...(proxyUrl ? { proxyUrl } : {}) };
    process.send?.(ready);
  }

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({}, "edge stopping");
    config.close();
    proxy?.close();
    proxy?.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    await journalRecorder?.close(2000).catch(() => {});
    await tracerProvider?.shutdown().catch(() => {});
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
} else {
  // The primary of several workers: journal, shipper and checkpoints; workers serve requests.
  const recorder = journalRecorder as AuditRecorder;
  const appender = {
    append: (...args: Parameters<AuditRecorder["journal"]["append"]>) => recorder.journal.append(...args),
    get healthy() {
      return recorder.healthy;
    },
  };
  cluster.setupPrimary({ serialization: "advanced" });
  let stopping = false;
  const workers = Array.from({ length: workerCount }, () =>
    cluster.fork(withEdgeMallocTunables({ GLIBC_TUNABLES: process.env.GLIBC_TUNABLES })),
  );
  const readies = workers.map(
    (w) =>
      new Promise<WorkerReady>((resolve) => {
        serveWorkerJournal(w, appender);
        serveWorkerUpstream(w, localUpstream);
        w.on("message", (m: unknown) => {
          if (typeof m === "object" && m !== null && (m as WorkerReady).tollgate === "worker-ready") {
            resolve(m as WorkerReady);
          }
        });
      }),
  );
  const stopAll = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({}, "edge stopping");
    config.close();
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const t = setTimeout(() => w.process.kill("SIGKILL"), 10_000);
            w.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            w.process.kill("SIGTERM");
          }),
      ),
    );
    await recorder.close(2000).catch(() => {});
    await tracerProvider?.shutdown().catch(() => {});
    process.exit(code);
  };
  // Fail-stop: a worker that dies takes the edge down (see edge-workers.ts).
  cluster.on("exit", (w, code, signal) => {
    if (stopping) return;
    logger.error({ worker: w.id, code, signal }, "edge worker exited; stopping the edge");
    void stopAll(1);
  });
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));
  const ready = await Promise.all(readies);
  const first = ready[0] as WorkerReady;
  if (first.proxyUrl !== undefined) {
    logger.info({ event: "proxy-ready", url: first.proxyUrl, caFile: join(home, "ca.pem") }, "proxy listening");
  }
  logger.info({ event: "ready", url: first.url, workers: workerCount }, "edge listening");
}
