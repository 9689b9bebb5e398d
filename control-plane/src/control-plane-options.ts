import { join } from "node:path";
import { DEFAULT_AUDIT_STREAM, DEFAULT_AUDIT_SUBJECT_PREFIX } from "@tollgate/sdk";
import { type Logger, silentLogger } from "./logger.js";
import type { RoleRule } from "./role-mapping.js";
import type { SamlConfig } from "./saml-sso.js";
import { DEFAULT_SESSION_TTL_SEC } from "./session-token.js";

/** OIDC login for people (`tollgate login`). */
export interface OidcConfig {
  /** Issuer URL, e.g. `https://login.example.com`. */
  issuer: string;
  /** Client id of the CLI at the issuer (a public client using PKCE / device flow). */
  clientId: string;
  /** Claims → roles. */
  roleMap: RoleRule[];
  /** Claim naming the person (principal `oidc:<value>`). Default `email`, falling back to `sub`. */
  principalClaim?: string;
  /** Scopes the CLI requests. Default `openid email profile groups`. */
  scopes?: string[];
  /** JWKS URL; default from the issuer's discovery document. */
  jwksUrl?: string;
}

/** Options for {@link ControlPlane}. Only `home` is required. */
export interface ControlPlaneOptions {
  /** `$TOLLGATE_HOME`: holds `control-plane/state.json`, the token files and the audit index. */
  home: string;
  /** NATS server URL, or several comma-separated (a cluster). Default `nats://127.0.0.1:4222`. */
  natsUrl?: string;
  /** Redis URL. Default `redis://127.0.0.1:6379`. */
  redisUrl?: string;
  /** Prefix of every Redis key the control plane writes. Default `tollgate:`. */
  redisPrefix?: string;
  /** JetStream audit stream name. Default `TOLLGATE_AUDIT`. */
  auditStream?: string;
  /** Audit subject prefix; events go to `<prefix>.audit.v1.…`. Default `tollgate`. */
  auditSubjectPrefix?: string;
  /** How long the audit stream keeps events, ms; 0 (default) keeps them forever. */
  auditMaxAgeMs?: number;
  /** Replicas of the audit stream (1..5; more than 1 needs a JetStream cluster). Default 1. */
  auditReplicas?: number;
  /** JetStream duplicate window for `Nats-Msg-Id`, ms. Default 120000 (2 min). */
  auditDuplicateWindowMs?: number;
  /**
   * Alert (`silent`, then `resumed`) when an edge that published checkpoints publishes none for
   * longer than this, ms; 0 = off. Default 30000 (edges checkpoint every 5 s).
   */
  auditSilenceAlertMs?: number;
  /** Durable consumer that feeds the audit index. Default `<auditStream>_INDEX`. */
  auditIndexConsumer?: string;
  /** Audit index database. Default `<home>/control-plane/audit-index.sqlite`. */
  indexPath?: string;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 8788. */
  port?: number;
  /** Connection attempt timeout for NATS and Redis at start-up, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Logger (pino in the deployable). Default: silent. */
  logger?: Logger;
  /** OIDC login for people; absent = off. */
  oidc?: OidcConfig | undefined;
  /** SAML SSO for people; absent = off. */
  saml?: SamlConfig | undefined;
  /** Lifetime of people's session tokens, seconds; capped at 12 h and by the IdP's token. Default 8 h. */
  sessionTtlSec?: number;
  /**
   * Legacy/dev switch: accept the shared edge bearer token (`$TOLLGATE_HOME/edge.token`) as an
   * edge credential. Default false: edges authenticate only by enrollment (signed requests).
   */
  allowSharedEdgeToken?: boolean;
}

/** {@link ControlPlaneOptions} with every default filled in. */
export type ResolvedControlPlaneOptions = Required<Omit<ControlPlaneOptions, "oidc" | "saml">> &
  Pick<ControlPlaneOptions, "oidc" | "saml">;

/** Fills in defaults. */
export function resolveControlPlaneOptions(options: ControlPlaneOptions): ResolvedControlPlaneOptions {
  const auditStream = options.auditStream ?? DEFAULT_AUDIT_STREAM;
  return {
    home: options.home,
    natsUrl: options.natsUrl ?? "nats://127.0.0.1:4222",
    redisUrl: options.redisUrl ?? "redis://127.0.0.1:6379",
    redisPrefix: options.redisPrefix ?? "tollgate:",
    auditStream,
    auditSubjectPrefix: options.auditSubjectPrefix ?? DEFAULT_AUDIT_SUBJECT_PREFIX,
    auditMaxAgeMs: options.auditMaxAgeMs ?? 0,
    auditReplicas: options.auditReplicas ?? 1,
    auditDuplicateWindowMs: options.auditDuplicateWindowMs ?? 120_000,
    auditSilenceAlertMs: options.auditSilenceAlertMs ?? 30_000,
    auditIndexConsumer: options.auditIndexConsumer ?? `${auditStream}_INDEX`,
    indexPath: options.indexPath ?? join(options.home, "control-plane", "audit-index.sqlite"),
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 8788,
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    logger: options.logger ?? silentLogger,
    oidc: options.oidc,
    saml: options.saml,
    sessionTtlSec: options.sessionTtlSec ?? DEFAULT_SESSION_TTL_SEC,
    allowSharedEdgeToken: options.allowSharedEdgeToken ?? false,
  };
}
