import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import {
  AuditService,
  ConnectionService,
  CredentialService,
  EdgeAdminService,
  EdgeEnrollmentService,
  EdgeService,
  IdentityService,
  ServiceAccountCredentialService,
  WebIdentityService,
  WorkloadService,
} from "@tollgate/proto";
import type { Logger } from "./logger.js";
import { hashToken } from "./state-store.js";

/** Roles a person or workload can hold. */
export const ROLES = ["admin", "auditor", "approver", "agent"] as const;
/** A role: `admin` manages, `auditor` reads audit, `approver` (reserved) approves, `agent` gets its own credentials. */
export type Role = (typeof ROLES)[number];

/**
 * Who may call a method:
 * - a {@link Role}: any caller holding it;
 * - `edge`: an enrolled edge agent (signed requests, edge-auth.ts), or the legacy shared edge
 *   token when the control plane allows it (`allowSharedEdgeToken`);
 * - `authenticated`: any authenticated caller;
 * - `public`: no credential needed (login itself).
 *
 * The break-glass admin token may call every method; each use is audited.
 */
export type Audience = Role | "edge" | "authenticated" | "public";

/** How a caller authenticated. */
export type AuthMethod = "break-glass" | "edge-token" | "oidc" | "saml" | (string & {});

/** An authenticated caller, set on the request context for handlers ({@link callerKey}). */
export interface Caller {
  /** `person`/`workload` callers carry roles; `edge` is an edge agent; `break-glass` the bootstrap admin token. */
  kind: "person" | "workload" | "edge" | "break-glass";
  /** Tollgate principal, e.g. `oidc:alice@example.com`; `break-glass` and `edge` for those tokens. */
  principal: string;
  /** Roles held. The break-glass caller holds `admin`. */
  roles: readonly Role[];
  authMethod: AuthMethod;
  /**
   * Connections an `agent` may get credentials for; `*` in the list allows any. Absent or empty:
   * none (the agent role alone grants no connection).
   */
  connections?: readonly string[];
  /** When the credential the caller presented expires (Unix ms), if it does. */
  expiresAtMs?: number;
  /** Id of the Tollgate session (JWT `jti`), for session callers. */
  sessionId?: string;
  /** Identity provider (OIDC issuer, SAML IdP entity id) and the subject there, for people. */
  idpIssuer?: string;
  idpSubject?: string;
}

/** Context value set by the auth interceptor; handlers read it with `ctx.values.get(callerKey)`. */
export const callerKey = createContextKey<Caller | undefined>(undefined, {
  description: "tollgate caller",
});

const m = (service: { typeName: string }, method: string): string => `${service.typeName}/${method}`;

/**
 * The authorization table: every method of every service, default deny. A method missing here is
 * refused for everyone but the break-glass token; a unit test fails when any RPC in
 * `@tollgate/proto` has no entry. Keys are `<package>.<Service>/<Method>`.
 */
export const METHOD_ACCESS: Readonly<Record<string, readonly Audience[]>> = {
  // Connections: admins manage them; approvers may read them (to judge what a request touches).
  [m(ConnectionService, "CreateConnection")]: ["admin"],
  [m(ConnectionService, "DeleteConnection")]: ["admin"],
  [m(ConnectionService, "GetConnection")]: ["admin", "approver"],
  [m(ConnectionService, "ListConnections")]: ["admin", "approver"],
  // Credentials: admins for anyone; agents only for themselves (enforced in credential-service.ts).
  [m(CredentialService, "IssueCredential")]: ["admin", "agent"],
  [m(CredentialService, "ListCredentials")]: ["admin", "auditor"],
  [m(CredentialService, "RevokeCredential")]: ["admin"],
  [m(CredentialService, "RevokePrincipal")]: ["admin"],
  [m(CredentialService, "ListRevocations")]: ["admin", "auditor"],
  // Edge configuration carries upstream secrets: edges only.
  [m(EdgeService, "GetEdgeConfig")]: ["edge"],
  [m(EdgeService, "RegisterEdgeKey")]: ["edge"],
  [m(EdgeService, "ListEdges")]: ["admin", "auditor", "edge"],
  // Edge enrollment: admins mint one-time tokens and revoke edges; Enroll carries its one-time
  // token in the request (served outside this interceptor, see control-plane.ts).
  [m(EdgeAdminService, "CreateEnrollmentToken")]: ["admin"],
  [m(EdgeAdminService, "RevokeEdge")]: ["admin"],
  [m(EdgeEnrollmentService, "Enroll")]: ["public"],
  // Audit read.
  [m(AuditService, "QueryEvents")]: ["admin", "auditor", "approver"],
  [m(AuditService, "TailEvents")]: ["admin", "auditor"],
  [m(AuditService, "ListAlerts")]: ["admin", "auditor"],
  // Workload identity: trust rules and service accounts are administration.
  [m(WorkloadService, "CreateTrustRule")]: ["admin"],
  [m(WorkloadService, "ListTrustRules")]: ["admin"],
  [m(WorkloadService, "DeleteTrustRule")]: ["admin"],
  [m(WorkloadService, "CreateServiceAccount")]: ["admin"],
  [m(WorkloadService, "ListServiceAccounts")]: ["admin"],
  [m(WorkloadService, "DeleteServiceAccount")]: ["admin"],
  [m(WorkloadService, "RotateServiceAccountKey")]: ["admin"],
  // The edge's STS AssumeRoleWithWebIdentity hands the agent's JWT to the control plane.
  [m(WebIdentityService, "ExchangeWebIdentity")]: ["edge"],
  // The bearer is a service account's API key, checked by the service itself (it is served
  // outside this interceptor, see control-plane.ts); no other credential is accepted there.
  [m(ServiceAccountCredentialService, "IssueServiceAccountCredential")]: ["public"],
  // Identity.
  [m(IdentityService, "GetLoginConfig")]: ["public"],
  [m(IdentityService, "Login")]: ["public"],
  [m(IdentityService, "WhoAmI")]: ["authenticated"],
  [m(IdentityService, "Logout")]: ["authenticated"],
};

/** May this caller call this method (`<package>.<Service>/<Method>`)? Default deny. */
export function isAllowed(procedure: string, caller: Caller | undefined): boolean {
  const audiences = Object.hasOwn(METHOD_ACCESS, procedure) ? METHOD_ACCESS[procedure] : undefined;
  if (audiences === undefined) return caller?.kind === "break-glass";
  if (audiences.includes("public")) return true;
  if (caller === undefined) return false;
  if (caller.kind === "break-glass") return true;
  if (audiences.includes("authenticated")) return true;
  if (caller.kind === "edge") return audiences.includes("edge");
  return caller.roles.some((r) => audiences.includes(r));
}

/**
 * Turns a bearer token into a {@link Caller}. Returns undefined when the token is not of its kind
 * (the next authenticator is tried); throws `ConnectError` (Unauthenticated) when it is, but is
 * invalid (expired, revoked).
 */
export type Authenticator = (token: string) => Promise<Caller | undefined> | Caller | undefined;

/** Hashes of the bootstrap bearer tokens. */
export interface TokenHashes {
  adminTokenSha256: Uint8Array;
  /** The legacy shared edge token; absent (the default in the control plane) = refused. */
  edgeTokenSha256?: Uint8Array;
}

/** Options for {@link createTokenAuthInterceptor}. */
export interface TokenAuthOptions {
  /** Hashes of the break-glass admin token and the bootstrap edge token. */
  tokens: TokenHashes;
  /** Further authenticators (sessions, service accounts), tried in order after the bootstrap tokens. */
  authenticators?: readonly Authenticator[];
  /**
   * Called on every use of the break-glass token (after it is logged), with the procedure
   * called. The control plane raises an alert on NATS and in the audit index. Must not throw.
   */
  onBreakGlass?: (procedure: string, method: string) => void;
  logger: Logger;
}

function bearer(header: string | null): string | undefined {
  if (header === null) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}

function matches(presented: Buffer, stored: Uint8Array): boolean {
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/**
 * Connect interceptor: authenticates `authorization: Bearer <token>` and authorizes the call
 * against {@link METHOD_ACCESS}. The break-glass admin token may call everything; every use is
 * logged (never the token itself) and reported to `onBreakGlass`.
 */
export function createTokenAuthInterceptor(options: TokenAuthOptions): Interceptor {
  const { tokens, logger } = options;
  const authenticators = options.authenticators ?? [];
  const authenticate = async (token: string): Promise<Caller | undefined> => {
    const presented = hashToken(token);
    // Compare against both so the timing does not reveal which one was close.
    const isAdmin = matches(presented, tokens.adminTokenSha256);
    const isEdge = tokens.edgeTokenSha256 !== undefined && matches(presented, tokens.edgeTokenSha256);
    if (isAdmin) return { kind: "break-glass", principal: "break-glass", roles: ["admin"], authMethod: "break-glass" };
    if (isEdge) return { kind: "edge", principal: "edge", roles: [], authMethod: "edge-token" };
    for (const a of authenticators) {
      const caller = await a(token);
      if (caller !== undefined) return caller;
    }
    return undefined;
  };

  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const audiences = Object.hasOwn(METHOD_ACCESS, procedure) ? METHOD_ACCESS[procedure] : undefined;
    if (audiences?.includes("public")) return await next(req);

    // Already authenticated by an earlier interceptor (an enrolled edge's signature, edge-auth.ts):
    // still authorized against the table below.
    let caller = req.contextValues.get(callerKey);
    if (caller === undefined) {
      const token = bearer(req.header.get("authorization"));
      if (token === undefined) throw new ConnectError("missing bearer token", Code.Unauthenticated);
      caller = await authenticate(token);
      if (caller === undefined) throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    }
    if (caller.kind === "break-glass") {
      logger.warn({ event: "admin_token_used", procedure }, "break-glass admin token used");
      options.onBreakGlass?.(procedure, req.method.name);
    }
    if (!isAllowed(procedure, caller)) {
      logger.info(
        { event: "permission_denied", procedure, principal: caller.principal, roles: caller.roles },
        "permission denied",
      );
      throw new ConnectError(
        caller.kind === "edge"
          ? `the edge credential may not call ${req.method.name}`
          : `${req.method.name} requires one of the roles: ${(audiences ?? []).filter((a) => a !== "edge").join(", ") || "(none)"}`,
        Code.PermissionDenied,
      );
    }
    req.contextValues.set(callerKey, caller);
    return await next(req);
  };
}
