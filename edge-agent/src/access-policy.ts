import type { GatewayCredentialClaims } from "@tollgate/sdk";
import type { Classification } from "./aws-classifier.js";
import type { EdgeConfigSnapshot } from "./edge-config.js";

/** The edge's verdict on an authenticated call. */
export type AccessDecision =
  | { allow: true }
  | { allow: false; kind: "access-denied" | "unavailable" | "unknown-access-key"; reason: string; message: string };

/** What the decision is made on. */
export interface AccessRequest {
  claims: GatewayCredentialClaims;
  classification: Classification;
  config: EdgeConfigSnapshot;
  /** False when the audit trail cannot be written: the edge fails closed. */
  auditHealthy: boolean;
  /** Now, Unix ms (revocations are enforced until a time). */
  nowMs: number;
}

/** What a revoked credential or principal is told (InvalidClientTokenId family). */
export const REVOKED_MESSAGE = "The security token included in the request is revoked";

/**
 * Decides whether an authenticated call may proceed. The skeleton enforces the invariants
 * every later policy builds on: the credential and its principal must not be revoked, the
 * credential's connection must be served by this edge, and no call proceeds unless it can be
 * recorded.
 */
export function decideAccess(request: AccessRequest): AccessDecision {
  const { claims, config, nowMs } = request;
  const credentialUntil = config.revokedCredentials.get(claims.credentialId);
  if (credentialUntil !== undefined && credentialUntil > nowMs) {
    return { allow: false, kind: "unknown-access-key", reason: "credential-revoked", message: REVOKED_MESSAGE };
  }
  const principalUntil = config.revokedPrincipals.get(claims.principal);
  if (principalUntil !== undefined && principalUntil > nowMs) {
    return { allow: false, kind: "unknown-access-key", reason: "principal-revoked", message: REVOKED_MESSAGE };
  }
  if (!request.auditHealthy) {
    return {
      allow: false,
      kind: "unavailable",
      reason: "audit-unavailable",
      message: "Tollgate cannot record this call right now; refusing it (fail closed).",
    };
  }
  if (!request.config.connections.has(request.claims.connection)) {
    return {
      allow: false,
      kind: "access-denied",
      reason: "unknown-connection",
      message: `Connection ${request.claims.connection} is not served by this Tollgate edge.`,
    };
  }
  return { allow: true };
}
