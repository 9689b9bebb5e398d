#!/usr/bin/env node
// The edge agent process: reads its environment (only here), wires the parts, listens.
import { readFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createControlPlaneClient } from "@tollgate/sdk";
import { pino } from "pino";
import { AuditPublisher } from "./audit-publisher.js";
import { EdgeConfigSource } from "./edge-config.js";
import { createEdgeServer } from "./edge-server.js";

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
const edgeName = env("TOLLGATE_EDGE_NAME", hostname());
const logLevel = env("TOLLGATE_LOG_LEVEL", "info");
let edgeToken = process.env.TOLLGATE_EDGE_TOKEN ?? "";
if (edgeToken === "") {
  const file = join(home, "edge.token");
  try {
    edgeToken = readFileSync(file, "utf8").trim();
  } catch {
    fail(`no edge token: set TOLLGATE_EDGE_TOKEN or create ${file}`);
  }
}

const logger = pino({ level: logLevel, base: { service: "tollgate-edge", edge: edgeName } });

const nc = await connect({ servers: natsUrl, name: `tollgate-edge-${edgeName}`, maxReconnectAttempts: -1 }).catch(() =>
  fail(`cannot reach NATS at ${natsUrl}`),
);
const client = createControlPlaneClient({ baseUrl: controlPlaneUrl, token: edgeToken, timeoutMs: 10_000 });
const config = new EdgeConfigSource({ client, edgeName, logger });
await config
  .start()
  .catch((err: unknown) =>
    fail(
      `cannot get configuration from the control plane at ${controlPlaneUrl}: ${err instanceof Error ? err.message : String(err)}`,
    ),
  );
const publisher = new AuditPublisher({ nc, js: jetstream(nc), logger });
const server = createEdgeServer({
  config: () => config.snapshot,
  refreshConfig: () => config.refreshIfOlderThan(500),
  publisher,
  edgeName,
  logger,
});

server.on("error", (err) => fail(`cannot listen on ${listen.host}:${listen.port}: ${err.message}`));
server.listen(listen.port, listen.host, () => {
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : listen.port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  logger.info({ event: "ready", url: `http://${host}:${port}` }, "edge listening");
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({}, "edge stopping");
  config.close();
  await new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  await nc.drain().catch(() => {});
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
