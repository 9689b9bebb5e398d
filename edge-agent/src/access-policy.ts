import type { GatewayCredentialClaims } from "@tollgate/sdk";
import type { Classification } from "./aws-classifier.js";
import type { EdgeConfigSnapshot } from "./edge-config.js";

/** The edge's verdict on an authenticated call. */
export type AccessDecision =
  | { allow: true }
  | { allow: false; kind: "access-denied" | "unavailable"; reason: string; message: string };

/** What the decision is made on. */
export interface AccessRequest {
  claims: GatewayCredentialClaims;
  classification: Classification;
  config: EdgeConfigSnapshot;
  /** False when the audit trail cannot be written: the edge fails closed. */
  auditHealthy: boolean;
}

/**
 * Decides whether an authenticated call may proceed. The skeleton enforces the invariants
 * every later policy builds on: the credential's connection must be served by this edge,
 * and no call proceeds unless it can be recorded.
 */
export function decideAccess(request: AccessRequest): AccessDecision {
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
