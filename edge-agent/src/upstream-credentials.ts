import { signedAwsQuery } from "@tollgate/sdk";
import type { EdgeConnectionConfig } from "./edge-config.js";
import type { Logger } from "./logger.js";
import type { UpstreamCredentials } from "./upstream-signer.js";

/** Who a forwarded call is signed as; recorded in the audit event's `tollgate.upstreamIdentity`. */
export interface UpstreamIdentityInfo {
  source: "static" | "edge" | "assume-role";
  accessKeyId: string;
  roleArn: string;
  assumedRoleArn: string;
  sessionName: string;
  sourceIdentity: string;
}

/** Credentials to sign a forwarded call with, and whose they are. */
export interface ResolvedUpstream {
  credentials: UpstreamCredentials;
  identity: UpstreamIdentityInfo;
}

/** Upstream credentials could not be obtained; the call is refused (503), never forwarded unsigned. */
export class UpstreamCredentialsError extends Error {
  override readonly name = "UpstreamCredentialsError";
  readonly code = "ERR_UPSTREAM_CREDENTIALS";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Options of {@link UpstreamCredentialResolver}. */
export interface UpstreamCredentialResolverOptions {
  /**
   * The edge process's own AWS credentials (its environment: `AWS_ACCESS_KEY_ID`, ...), for
   * connections with credential source "edge". Undefined: such connections are refused.
   */
  edgeCredentials?: UpstreamCredentials | undefined;
  logger: Logger;
  /** Assumed-role sessions are renewed this long before they expire. Default 300000 ms. */
  refreshBeforeMs?: number;
  /** DurationSeconds asked of STS. Default 3600. */
  sessionDurationSec?: number;
  /** Timeout of one AssumeRole call. Default 10000 ms. */
  timeoutMs?: number;
}

/** STS names: RoleSessionName and SourceIdentity are `[\w+=,.@-]{2,64}`. */
export function stsSessionName(principal: string): string {
  const cleaned = principal.replace(/[^\w+=,.@-]/g, "-").slice(0, 64);
  return cleaned.length >= 2 ? cleaned : cleaned.padEnd(2, "-");
}

interface CachedSession {
  resolved: ResolvedUpstream;
  expiresAtMs: number;
}

function xmlValue(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1]
    ?.replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/**
 * Resolves the credentials a connection's forwarded calls are signed with: its static keys, the
 * edge's own AWS credentials, or — when the connection names a role — temporary credentials
 * from STS `AssumeRole` (against the connection's endpoint, else `sts.<region>.amazonaws.com`)
 * with `RoleSessionName` and `SourceIdentity` = the principal, so the upstream CloudTrail names
 * the agent. Sessions are cached per (connection, role, principal) until shortly before they
 * expire; concurrent calls share one AssumeRole.
 */
export class UpstreamCredentialResolver {
  readonly #options: Required<Omit<UpstreamCredentialResolverOptions, "edgeCredentials">> & {
    edgeCredentials: UpstreamCredentials | undefined;
  };
  readonly #sessions = new Map<string, CachedSession>();
  readonly #pending = new Map<string, Promise<CachedSession>>();
  readonly #edgeIdentity: UpstreamIdentityInfo | undefined;

  constructor(options: UpstreamCredentialResolverOptions) {
    this.#options = {
      refreshBeforeMs: 300_000,
      sessionDurationSec: 3600,
      timeoutMs: 10_000,
      ...options,
      edgeCredentials: options.edgeCredentials,
    };
    const edge = this.#options.edgeCredentials;
    this.#edgeIdentity =
      edge === undefined
        ? undefined
        : {
            source: "edge",
            accessKeyId: edge.accessKeyId,
            roleArn: "",
            assumedRoleArn: "",
            sessionName: "",
            sourceIdentity: "",
          };
  }

  /** Base credentials of a connection: its static keys or the edge's own. */
  #base(connection: EdgeConnectionConfig): ResolvedUpstream {
    if (connection.credentialSource === "edge") {
      const creds = this.#options.edgeCredentials;
      if (creds === undefined || this.#edgeIdentity === undefined) {
        throw new UpstreamCredentialsError(
          `connection ${connection.name} uses the edge's AWS credentials, but this edge has none (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)`,
        );
      }
      return { credentials: creds, identity: this.#edgeIdentity };
    }
    return {
      credentials: connection.credentials,
      identity: {
        source: "static",
        accessKeyId: connection.credentials.accessKeyId,
        roleArn: "",
        assumedRoleArn: "",
        sessionName: "",
        sourceIdentity: "",
      },
    };
  }

  /** The credentials to sign `principal`'s call on `connection` with. */
  async resolve(connection: EdgeConnectionConfig, principal: string): Promise<ResolvedUpstream> {
    const base = this.#base(connection);
    if (connection.roleArn === "") return base;
    const key = [
      connection.name,
      connection.roleArn,
      connection.externalId,
      base.credentials.accessKeyId,
      principal,
    ].join("\n");
    const now = Date.now();
    const cached = this.#sessions.get(key);
    if (cached !== undefined && cached.expiresAtMs - this.#options.refreshBeforeMs > now) return cached.resolved;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#assumeRole(connection, base.credentials, principal).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    const session = await pending;
    this.#sessions.set(key, session);
    this.#prune(now);
    return session.resolved;
  }

  #prune(now: number): void {
    for (const [key, s] of this.#sessions) if (s.expiresAtMs <= now) this.#sessions.delete(key);
  }

  async #assumeRole(
    connection: EdgeConnectionConfig,
    base: UpstreamCredentials,
    principal: string,
  ): Promise<CachedSession> {
    const sessionName = stsSessionName(principal);
    const endpoint =
      connection.upstreamEndpoint !== ""
        ? connection.upstreamEndpoint
        : `https://sts.${connection.region}.amazonaws.com`;
    const params: Record<string, string> = {
      Action: "AssumeRole",
      Version: "2011-06-15",
      RoleArn: connection.roleArn,
      RoleSessionName: sessionName,
      SourceIdentity: sessionName,
      DurationSeconds: String(this.#options.sessionDurationSec),
    };
    if (connection.externalId !== "") params.ExternalId = connection.externalId;
    let res: Awaited<ReturnType<typeof signedAwsQuery>>;
    try {
      res = await signedAwsQuery({
        endpoint,
        service: "sts",
        region: connection.region,
        accessKeyId: base.accessKeyId,
        secretAccessKey: base.secretAccessKey,
        ...(base.sessionToken === undefined ? {} : { sessionToken: base.sessionToken }),
        params,
        timeoutMs: this.#options.timeoutMs,
      });
    } catch (cause) {
      throw new UpstreamCredentialsError(`AssumeRole ${connection.roleArn} failed: cannot reach STS`, { cause });
    }
    const accessKeyId = xmlValue(res.body, "AccessKeyId");
    const secretAccessKey = xmlValue(res.body, "SecretAccessKey");
    const sessionToken = xmlValue(res.body, "SessionToken");
    const expiration = xmlValue(res.body, "Expiration");
    if (res.status !== 200 || !accessKeyId || !secretAccessKey || !sessionToken) {
      const code = xmlValue(res.body, "Code") ?? `HTTP ${res.status}`;
      this.#options.logger.warn(
        { event: "assume_role_failed", connection: connection.name, roleArn: connection.roleArn, code },
        "AssumeRole failed",
      );
      throw new UpstreamCredentialsError(`AssumeRole ${connection.roleArn} failed: ${code}`);
    }
    const expiresAtMs = expiration === undefined ? Number.NaN : Date.parse(expiration);
    const assumedRoleArn = xmlValue(res.body.slice(res.body.indexOf("<AssumedRoleUser>")), "Arn") ?? "";
    this.#options.logger.info(
      { event: "assume_role", connection: connection.name, assumedRoleArn, accessKeyId },
      "assumed upstream role",
    );
    return {
      expiresAtMs: Number.isFinite(expiresAtMs) ? expiresAtMs : Date.now() + 15 * 60_000,
      resolved: {
        credentials: { accessKeyId, secretAccessKey, sessionToken },
        identity: {
          source: "assume-role",
          accessKeyId,
          roleArn: connection.roleArn,
          assumedRoleArn,
          sessionName,
          sourceIdentity: sessionName,
        },
      },
    };
  }
}
