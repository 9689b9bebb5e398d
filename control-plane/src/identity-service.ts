import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { IdentityService, Session } from "@tollgate/proto";
import { PRINCIPAL_PATTERN } from "./credential-issuer.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";
import { IdTokenError, type OidcVerifier } from "./oidc-verifier.js";
import { mapRoles, type RoleRule } from "./role-mapping.js";
import { DEFAULT_SESSION_TTL_SEC, MAX_SESSION_TTL_SEC, type SessionTokens } from "./session-token.js";
import { type Caller, callerKey } from "./token-auth.js";

/** OIDC login settings. */
export interface OidcLoginOptions {
  verifier: OidcVerifier;
  /** Scopes the CLI requests. Default `openid email profile groups`. */
  scopes?: readonly string[];
  /** Claim that names the person; the principal is `oidc:<value>`. Default `email`, falling back to `sub`. */
  principalClaim?: string;
  /** Claims → roles. */
  roleMap: readonly RoleRule[];
}

/** Options for {@link createIdentityServiceImpl}. */
export interface IdentityServiceOptions {
  sessions: SessionTokens;
  /** Absent: OIDC login is off and `Login` fails with FailedPrecondition. */
  oidc?: OidcLoginOptions | undefined;
  /** Path of the SAML login endpoint, when SAML is configured. */
  samlLoginPath?: string | undefined;
  /** Session lifetime, seconds (capped at 12 h and by the IdP token). Default 8 h. */
  sessionTtlSec?: number;
  logger: Logger;
}

/** Default OIDC scopes requested by `tollgate login`. */
export const DEFAULT_OIDC_SCOPES = ["openid", "email", "profile", "groups"] as const;

/** The Session message describing a caller. */
export function sessionMessage(caller: Caller): Omit<Session, "$typeName"> & { $typeName?: undefined } {
  return {
    principal: caller.principal,
    roles: [...caller.roles],
    authMethod: caller.authMethod,
    ...(caller.expiresAtMs === undefined ? {} : { expireTime: timestampFromMs(caller.expiresAtMs) }),
    connections: [...(caller.connections ?? [])],
    sessionId: caller.sessionId ?? "",
    idpIssuer: caller.idpIssuer ?? "",
    idpSubject: caller.idpSubject ?? "",
    kind: caller.kind,
  };
}

/** Picks the principal claim value: `principalClaim` if a non-empty string (and for email, not unverified), else `sub`. */
export function principalFromClaims(
  prefix: "oidc" | "saml",
  claims: Readonly<Record<string, unknown>>,
  principalClaim: string,
  subject: string,
): string {
  const v = claims[principalClaim];
  const emailUnverified = principalClaim === "email" && claims.email_verified === false;
  const name = typeof v === "string" && v !== "" && !emailUnverified ? v : subject;
  const principal = `${prefix}:${name}`;
  if (!PRINCIPAL_PATTERN.test(principal)) {
    throw new ConnectError("the identity's name cannot be a Tollgate principal", Code.PermissionDenied);
  }
  return principal;
}

/** IdentityService: OIDC login, WhoAmI, Logout, and where to log in. */
export function createIdentityServiceImpl(options: IdentityServiceOptions): ServiceImpl<typeof IdentityService> {
  const { sessions, oidc, logger } = options;
  const ttlSec = Math.min(options.sessionTtlSec ?? DEFAULT_SESSION_TTL_SEC, MAX_SESSION_TTL_SEC);
  return {
    getLoginConfig() {
      return {
        oidcIssuer: oidc?.verifier.issuer ?? "",
        oidcClientId: oidc?.verifier.clientId ?? "",
        oidcScopes: oidc === undefined ? [] : [...(oidc.scopes ?? DEFAULT_OIDC_SCOPES)],
        samlLoginPath: options.samlLoginPath ?? "",
      };
    },

    async login(req) {
      if (oidc === undefined) throw new ConnectError("OIDC login is not configured", Code.FailedPrecondition);
      let verified: Awaited<ReturnType<OidcVerifier["verify"]>>;
      try {
        verified = await oidc.verifier.verify(req.idToken, req.nonce);
      } catch (err) {
        if (!(err instanceof IdTokenError)) throw err;
        // The reason code only: never the token or its claims.
        logger.warn({ event: "login_refused", method: "oidc", reason: err.code }, `OIDC login refused: ${err.message}`);
        throw new ConnectError(
          err.message,
          err.code === "ERR_IDP_UNREACHABLE" ? Code.Unavailable : Code.Unauthenticated,
          undefined,
          undefined,
          err,
        );
      }
      const claims = verified.claims as Record<string, unknown>;
      const principal = principalFromClaims("oidc", claims, oidc.principalClaim ?? "email", verified.subject);
      const mapped = mapRoles(claims, oidc.roleMap);
      if (mapped.roles.length === 0) {
        logger.warn({ event: "login_refused", method: "oidc", reason: "no_role", principal }, "no role maps");
        throw new ConnectError(`${principal} has no Tollgate role`, Code.PermissionDenied);
      }
      const expiresAtSec = Math.min(Math.floor(Date.now() / 1000) + ttlSec, verified.expiresAtSec);
      const issued = await sessions.issue(
        {
          principal,
          roles: mapped.roles,
          connections: mapped.connections,
          authMethod: "oidc",
          idpIssuer: verified.issuer,
          idpSubject: verified.subject,
        },
        expiresAtSec,
      );
      logger.info(
        { event: "login", method: "oidc", principal, roles: mapped.roles, sessionId: issued.sessionId },
        "logged in",
      );
      return {
        sessionToken: issued.token,
        session: sessionMessage({
          kind: "person",
          principal,
          roles: mapped.roles,
          connections: mapped.connections,
          authMethod: "oidc",
          expiresAtMs: issued.expiresAtMs,
          sessionId: issued.sessionId,
          idpIssuer: verified.issuer,
          idpSubject: verified.subject,
        }),
      };
    },

    whoAmI(_req, ctx) {
      const caller = ctx.values.get(callerKey);
      if (caller === undefined) throw new ConnectError("not authenticated", Code.Unauthenticated);
      return { session: sessionMessage(caller) };
    },

    async logout(_req, ctx) {
      const caller = ctx.values.get(callerKey);
      if (caller?.sessionId === undefined || caller.expiresAtMs === undefined) {
        throw new ConnectError("only session tokens can log out", Code.FailedPrecondition);
      }
      await withInfra("redis", () => sessions.revoke(caller.sessionId as string, caller.expiresAtMs as number), logger);
      logger.info({ event: "logout", principal: caller.principal, sessionId: caller.sessionId }, "logged out");
      return {};
    },
  };
}
