import { hkdfSync, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose";
import { withInfra } from "./infra-error.js";
import { type Authenticator, type Caller, ROLES, type Role } from "./token-auth.js";

/** Longest a session may last, seconds (12 h). */
export const MAX_SESSION_TTL_SEC = 12 * 3600;
/** Default session lifetime, seconds (8 h), further capped by the IdP token. */
export const DEFAULT_SESSION_TTL_SEC = 8 * 3600;

const TYP = "tollgate-session+jwt";
const ISSUER = "tollgate-control-plane";
const AUDIENCE = "tollgate-api";

/** What a session says about its holder. */
export interface SessionIdentity {
  principal: string;
  roles: readonly Role[];
  connections: readonly string[];
  authMethod: "oidc" | "saml";
  /** OIDC issuer or SAML IdP entity id. */
  idpIssuer: string;
  idpSubject: string;
}

/** A session just issued. */
export interface IssuedSession {
  token: string;
  sessionId: string;
  expiresAtMs: number;
}

/**
 * Tollgate session tokens for people: HS256 JWTs (`typ: tollgate-session+jwt`) keyed by a key
 * derived (HKDF-SHA256) from the control plane's data key, so every control plane sharing the
 * state accepts them and nothing new is stored. Revocation (logout) is a Redis key per session
 * id, kept until the token would have expired.
 */
export class SessionTokens {
  readonly #key: Uint8Array;
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(dataKey: Uint8Array, redis: Redis, redisPrefix: string) {
    this.#key = new Uint8Array(hkdfSync("sha256", dataKey, Buffer.alloc(0), "tollgate session token v1", 32));
    this.#redis = redis;
    this.#prefix = `${redisPrefix}session-revoked:`;
  }

  /** Issues a token valid until `expiresAtSec` (the caller caps it). */
  async issue(identity: SessionIdentity, expiresAtSec: number): Promise<IssuedSession> {
    const sessionId = randomUUID();
    const token = await new SignJWT({
      roles: [...identity.roles],
      conns: [...identity.connections],
      amr: [identity.authMethod],
      idp: identity.idpIssuer,
      idp_sub: identity.idpSubject,
    })
      .setProtectedHeader({ alg: "HS256", typ: TYP })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(identity.principal)
      .setJti(sessionId)
      .setIssuedAt()
      .setExpirationTime(expiresAtSec)
      .sign(this.#key);
    return { token, sessionId, expiresAtMs: expiresAtSec * 1000 };
  }

  /** Revokes a session until it expires. */
  async revoke(sessionId: string, expiresAtMs: number): Promise<void> {
    const ttlMs = Math.max(1000, expiresAtMs - Date.now() + 60_000);
    await this.#redis.set(`${this.#prefix}${sessionId}`, "1", "PX", ttlMs);
  }

  /** Verifies a session token; throws `ConnectError` Unauthenticated when it is not valid. */
  async verify(token: string): Promise<Caller> {
    let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
    try {
      ({ payload } = await jwtVerify(token, this.#key, {
        algorithms: ["HS256"],
        typ: TYP,
        issuer: ISSUER,
        audience: AUDIENCE,
        requiredClaims: ["sub", "exp", "jti"],
      }));
    } catch (err) {
      const why = err instanceof errors.JWTExpired ? "session expired: log in again" : "invalid session token";
      throw new ConnectError(why, Code.Unauthenticated, undefined, undefined, err);
    }
    const sessionId = payload.jti as string;
    if ((await withInfra("redis", () => this.#redis.exists(`${this.#prefix}${sessionId}`))) === 1) {
      throw new ConnectError("session revoked: log in again", Code.Unauthenticated);
    }
    const roles = Array.isArray(payload.roles) ? ROLES.filter((r) => (payload.roles as unknown[]).includes(r)) : [];
    const connections = Array.isArray(payload.conns)
      ? (payload.conns as unknown[]).filter((c): c is string => typeof c === "string")
      : [];
    const amr = Array.isArray(payload.amr) && typeof payload.amr[0] === "string" ? payload.amr[0] : "oidc";
    return {
      kind: "person",
      principal: payload.sub as string,
      roles,
      connections,
      authMethod: amr,
      expiresAtMs: (payload.exp as number) * 1000,
      sessionId,
      idpIssuer: typeof payload.idp === "string" ? payload.idp : "",
      idpSubject: typeof payload.idp_sub === "string" ? payload.idp_sub : "",
    };
  }

  /** An {@link Authenticator} for the token-auth interceptor: claims tokens with our `typ` only. */
  authenticator(): Authenticator {
    return async (token) => {
      if (token.split(".").length !== 3) return undefined;
      try {
        if (decodeProtectedHeader(token).typ !== TYP) return undefined;
      } catch {
        return undefined;
      }
      return await this.verify(token);
    };
  }
}
