#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { trace } from "@opentelemetry/api";
import type { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { DEFAULT_AUDIT_STREAM, DEFAULT_AUDIT_SUBJECT_PREFIX, TollgateError } from "@tollgate/sdk";
import { type Logger as PinoLogger, pino } from "pino";
import { ControlPlane } from "./control-plane.js";
import type { OidcConfig } from "./control-plane-options.js";
import { parseRoleMap, type RoleRule } from "./role-mapping.js";
import type { SamlConfig } from "./saml-sso.js";

const PROGRAM = "tollgate-control-plane";
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

class EnvError extends Error {}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function envString(name: string, fallback: string, pattern?: RegExp): string {
  const v = env(name) ?? fallback;
  if (pattern !== undefined && !pattern.test(v)) throw new EnvError(`${name}=${JSON.stringify(v)} is not valid`);
  return v;
}

function envUrl(name: string, fallback: string, protocols: readonly string[]): string {
  const v = env(name) ?? fallback;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new EnvError(`${name} is not a URL`);
  }
  if (!protocols.includes(u.protocol)) throw new EnvError(`${name} must use ${protocols.join(" or ")}`);
  return v;
}

function envUrlList(name: string, fallback: string, protocols: readonly string[]): string {
  const v = env(name) ?? fallback;
  for (const part of v.split(",")) {
    let u: URL;
    try {
      u = new URL(part.trim());
    } catch {
      throw new EnvError(`${name} is not a URL or comma-separated list of URLs`);
    }
    if (!protocols.includes(u.protocol)) throw new EnvError(`${name} must use ${protocols.join(" or ")}`);
  }
  return v;
}

function envInt(name: string, fallback: number, min: number, max: number): number {
  const v = env(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new EnvError(`${name}=${JSON.stringify(v)} must be an integer from ${min} to ${max}`);
  }
  return n;
}

function envBool(name: string, fallback: boolean): boolean {
  const v = env(name);
  if (v === undefined) return fallback;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new EnvError(`${name}=${JSON.stringify(v)} must be true or false`);
}

function envListen(name: string, fallback: string): { host: string; port: number } {
  const v = env(name) ?? fallback;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (m === null || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new EnvError(`${name}=${JSON.stringify(v)} must be HOST:PORT`);
  }
  return { host, port };
}

function envLogLevel(name: string, fallback: LogLevel): LogLevel {
  const v = env(name) ?? fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(v))
    throw new EnvError(`${name} must be one of ${LOG_LEVELS.join(", ")}`);
  return v as LogLevel;
}

/**
 * OpenTelemetry traces: on when an OTLP endpoint is set (the standard OTEL_* variables; the
 * exporter, sampler and batch processor read theirs); registered as the global provider. The SDK
 * is loaded only then, so a process without tracing does not pay for importing it.
 */
async function startTracing(): Promise<BasicTracerProvider | undefined> {
  const endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ?? env("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (endpoint === undefined) return undefined;
  if ((env("OTEL_SDK_DISABLED") ?? "false").toLowerCase() === "true") return undefined;
  if (env("OTEL_TRACES_EXPORTER") === "none") return undefined;
  for (const name of ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
    const protocol = env(name) ?? "http/json";
    if (protocol !== "http/json") throw new EnvError(`${name}: only http/json is supported, got "${protocol}"`);
  }
  const [{ OTLPTraceExporter }, { detectResources, envDetector, resourceFromAttributes }, sdk] = await Promise.all([
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace-base"),
  ]);
  const provider = new sdk.BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": PROGRAM }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter())],
  });
  trace.setGlobalTracerProvider(provider);
  return provider;
}

function envRoleMap(name: string): RoleRule[] {
  const v = env(name);
  if (v === undefined) throw new EnvError(`${name} is required (a JSON list of role rules)`);
  try {
    return parseRoleMap(v);
  } catch (err) {
    throw new EnvError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** OIDC login: TOLLGATE_OIDC_ISSUER + TOLLGATE_OIDC_CLIENT_ID (+ role map); neither = off. */
function envOidc(): OidcConfig | undefined {
  const issuer = env("TOLLGATE_OIDC_ISSUER");
  const clientId = env("TOLLGATE_OIDC_CLIENT_ID");
  if (issuer === undefined && clientId === undefined) return undefined;
  if (issuer === undefined || clientId === undefined) {
    throw new EnvError("TOLLGATE_OIDC_ISSUER and TOLLGATE_OIDC_CLIENT_ID must be set together");
  }
  envUrl("TOLLGATE_OIDC_ISSUER", issuer, ["https:", "http:"]);
  const jwksUrl = env("TOLLGATE_OIDC_JWKS_URL");
  if (jwksUrl !== undefined) envUrl("TOLLGATE_OIDC_JWKS_URL", jwksUrl, ["https:", "http:"]);
  const scopes = env("TOLLGATE_OIDC_SCOPES");
  const principalClaim = env("TOLLGATE_OIDC_PRINCIPAL_CLAIM");
  return {
    issuer,
    clientId,
    roleMap: envRoleMap("TOLLGATE_OIDC_ROLE_MAP"),
    ...(scopes === undefined ? {} : { scopes: scopes.split(/\s+/) }),
    ...(principalClaim === undefined ? {} : { principalClaim }),
    ...(jwksUrl === undefined ? {} : { jwksUrl }),
  };
}

/** SAML SSO: TOLLGATE_SAML_ENTRY_POINT + ..._IDP_CERT_FILE + ..._SP_ENTITY_ID (+ role map); none = off. */
function envSaml(): SamlConfig | undefined {
  const entryPoint = env("TOLLGATE_SAML_ENTRY_POINT");
  const certFile = env("TOLLGATE_SAML_IDP_CERT_FILE");
  const spEntityId = env("TOLLGATE_SAML_SP_ENTITY_ID");
  if (entryPoint === undefined && certFile === undefined && spEntityId === undefined) return undefined;
  if (entryPoint === undefined || certFile === undefined || spEntityId === undefined) {
    throw new EnvError(
      "TOLLGATE_SAML_ENTRY_POINT, TOLLGATE_SAML_IDP_CERT_FILE and TOLLGATE_SAML_SP_ENTITY_ID must be set together",
    );
  }
  envUrl("TOLLGATE_SAML_ENTRY_POINT", entryPoint, ["https:", "http:"]);
  let idpCert: string;
  try {
    idpCert = readFileSync(certFile, "utf8");
  } catch {
    throw new EnvError(`TOLLGATE_SAML_IDP_CERT_FILE: cannot read ${certFile}`);
  }
  if (!idpCert.includes("-----BEGIN CERTIFICATE-----")) {
    throw new EnvError("TOLLGATE_SAML_IDP_CERT_FILE must hold a PEM certificate");
  }
  const acsUrl = env("TOLLGATE_SAML_ACS_URL");
  if (acsUrl !== undefined) envUrl("TOLLGATE_SAML_ACS_URL", acsUrl, ["https:", "http:"]);
  const idpIssuer = env("TOLLGATE_SAML_IDP_ISSUER");
  const audience = env("TOLLGATE_SAML_AUDIENCE");
  const principalAttribute = env("TOLLGATE_SAML_PRINCIPAL_ATTRIBUTE");
  return {
    entryPoint,
    idpCert,
    spEntityId,
    roleMap: envRoleMap("TOLLGATE_SAML_ROLE_MAP"),
    clockSkewMs: envInt("TOLLGATE_SAML_CLOCK_SKEW", 60, 0, 300) * 1000,
    ...(acsUrl === undefined ? {} : { acsUrl }),
    ...(idpIssuer === undefined ? {} : { idpIssuer }),
    ...(audience === undefined ? {} : { audience }),
    ...(principalAttribute === undefined ? {} : { principalAttribute }),
  };
}

function fail(message: string): never {
  process.stderr.write(`${PROGRAM}: ${message.replace(/\s+/g, " ")}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let controlPlane: ControlPlane;
  let logger: PinoLogger;
  let tracerProvider: BasicTracerProvider | undefined;
  try {
    tracerProvider = await startTracing();
    const listen = envListen("TOLLGATE_API_LISTEN", "127.0.0.1:8788");
    logger = pino({ name: PROGRAM, level: envLogLevel("TOLLGATE_LOG_LEVEL", "info") });
    controlPlane = new ControlPlane({
      home: resolve(env("TOLLGATE_HOME") ?? resolve(homedir(), ".tollgate")),
      natsUrl: envUrlList("TOLLGATE_NATS_URL", "nats://127.0.0.1:4222", ["nats:", "tls:", "ws:", "wss:"]),
      redisUrl: envUrl("TOLLGATE_REDIS_URL", "redis://127.0.0.1:6379", ["redis:", "rediss:"]),
      redisPrefix: envString("TOLLGATE_REDIS_PREFIX", "tollgate:", /^[^\s*?[\]]*$/),
      auditStream: envString("TOLLGATE_AUDIT_STREAM", DEFAULT_AUDIT_STREAM, /^[A-Za-z0-9_-]{1,255}$/),
      auditSubjectPrefix: envString(
        "TOLLGATE_AUDIT_SUBJECT_PREFIX",
        DEFAULT_AUDIT_SUBJECT_PREFIX,
        /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
      ),
      auditReplicas: envInt("TOLLGATE_AUDIT_REPLICAS", 1, 1, 5),
      auditMaxAgeMs: envInt("TOLLGATE_AUDIT_MAX_AGE", 0, 0, 100 * 365 * 24 * 3600) * 1000,
      auditSilenceAlertMs: envInt("TOLLGATE_AUDIT_SILENCE_ALERT", 30, 0, 24 * 3600) * 1000,
      host: listen.host,
      port: listen.port,
      oidc: envOidc(),
      saml: envSaml(),
      sessionTtlSec: envInt("TOLLGATE_SESSION_TTL", 8 * 3600, 60, 12 * 3600),
      allowSharedEdgeToken: envBool("TOLLGATE_ALLOW_SHARED_EDGE_TOKEN", false),
      logger,
    });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }

  let address: Awaited<ReturnType<ControlPlane["start"]>>;
  try {
    address = await controlPlane.start();
  } catch (err) {
    if (err instanceof TollgateError) fail(err.message);
    fail(`start-up failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  logger.info(
    {
      event: "ready",
      url: address.url,
      stream: controlPlane.options.auditStream,
      subjectPrefix: controlPlane.options.auditSubjectPrefix,
    },
    "control plane ready",
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: "stopping", signal }, "shutting down");
    controlPlane.close().then(
      async () => {
        await tracerProvider?.shutdown().catch(() => {});
        logger.info({ event: "stopped" }, "stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

await main();
