import type { GatewayCredentialClaims } from "@tollgate/sdk";
import { describe, expect, it } from "vitest";
import { decideAccess, REVOKED_MESSAGE } from "./access-policy.js";
import type { Classification } from "./aws-classifier.js";
import type { EdgeConfigSnapshot, EdgeConnectionConfig } from "./edge-config.js";

const NOW = 1_700_000_000_000;
const claims: GatewayCredentialClaims = {
  accessKeyId: "TGIAEXAMPLE",
  secretAccessKey: "s",
  principal: "alice",
  connection: "default",
  credentialId: "cred-1",
  issuedAtSec: NOW / 1000 - 60,
  expiresAtSec: NOW / 1000 + 3600,
};

function snapshot(over: Partial<EdgeConfigSnapshot> = {}): EdgeConfigSnapshot {
  return {
    revision: 1n,
    connections: new Map([["default", {} as EdgeConnectionConfig]]),
    credentialKeys: new Map(),
    auditStream: "S",
    auditSubjectPrefix: "p",
    revokedCredentials: new Map(),
    revokedPrincipals: new Map(),
    edgeRevoked: false,
    ...over,
  };
}

// decideAccess does not look at the classification yet.
const classification = {} as Classification;

describe("decideAccess", () => {
  it("allows a live credential on a served connection", () => {
    expect(decideAccess({ claims, classification, config: snapshot(), auditHealthy: true, nowMs: NOW })).toEqual({
      allow: true,
    });
  });

  it("refuses a revoked credential or principal while the revocation is in force, with the AWS message", () => {
    const byCredential = snapshot({ revokedCredentials: new Map([["cred-1", NOW + 1]]) });
    expect(decideAccess({ claims, classification, config: byCredential, auditHealthy: true, nowMs: NOW })).toEqual({
      allow: false,
      kind: "unknown-access-key",
      reason: "credential-revoked",
      message: REVOKED_MESSAGE,
    });
    const byPrincipal = snapshot({ revokedPrincipals: new Map([["alice", NOW + 1]]) });
    expect(decideAccess({ claims, classification, config: byPrincipal, auditHealthy: true, nowMs: NOW })).toMatchObject(
      { allow: false, reason: "principal-revoked" },
    );
    // Revocation wins over every other refusal.
    expect(
      decideAccess({ claims, classification, config: byPrincipal, auditHealthy: false, nowMs: NOW }),
    ).toMatchObject({ reason: "principal-revoked" });
    // Expired revocations and other principals' do not apply.
    const expired = snapshot({
      revokedPrincipals: new Map([["alice", NOW]]),
      revokedCredentials: new Map([["x", NOW + 1]]),
    });
    expect(decideAccess({ claims, classification, config: expired, auditHealthy: true, nowMs: NOW })).toEqual({
      allow: true,
    });
  });

  it("refuses unknown connections and an unwritable audit trail", () => {
    expect(
      decideAccess({
        claims,
        classification,
        config: snapshot({ connections: new Map() }),
        auditHealthy: true,
        nowMs: NOW,
      }),
    ).toMatchObject({ allow: false, reason: "unknown-connection" });
    expect(decideAccess({ claims, classification, config: snapshot(), auditHealthy: false, nowMs: NOW })).toMatchObject(
      {
        allow: false,
        reason: "audit-unavailable",
      },
    );
  });
});
