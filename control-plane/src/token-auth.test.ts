import type { DescService } from "@bufbuild/protobuf";
import * as proto from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import { type Caller, isAllowed, METHOD_ACCESS, ROLES } from "./token-auth.js";

/** Every service descriptor exported by @tollgate/proto. */
function allServices(): DescService[] {
  return Object.values(proto).filter(
    (v): v is DescService => typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "service",
  );
}

function allProcedures(): string[] {
  return allServices().flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
}

const person = (roles: Caller["roles"], extra: Partial<Caller> = {}): Caller => ({
  kind: "person",
  principal: "oidc:p@example.com",
  roles,
  authMethod: "oidc",
  ...extra,
});
const edge: Caller = { kind: "edge", principal: "edge", roles: [], authMethod: "edge-token" };
const breakGlass: Caller = {
  kind: "break-glass",
  principal: "break-glass",
  roles: ["admin"],
  authMethod: "break-glass",
};

describe("authorization table", () => {
  it("has an entry for every method of every service in @tollgate/proto", () => {
    const services = allServices();
    // The known services are found (guards against the enumeration itself silently finding none).
    expect(services.map((s) => s.typeName)).toEqual(
      expect.arrayContaining([
        "tollgate.audit.v1.AuditService",
        "tollgate.connection.v1.ConnectionService",
        "tollgate.credential.v1.CredentialService",
        "tollgate.edge.v1.EdgeService",
        "tollgate.identity.v1.IdentityService",
        "tollgate.workload.v1.WorkloadService",
      ]),
    );
    const missing = allProcedures().filter((p) => !Object.hasOwn(METHOD_ACCESS, p));
    expect(missing, "add these RPCs to METHOD_ACCESS in token-auth.ts").toEqual([]);
  });

  it("has no entry for a method that does not exist", () => {
    const known = new Set(allProcedures());
    expect(Object.keys(METHOD_ACCESS).filter((p) => !known.has(p))).toEqual([]);
  });

  it("only names known audiences", () => {
    const audiences = new Set<string>([...ROLES, "edge", "authenticated", "public"]);
    for (const [p, list] of Object.entries(METHOD_ACCESS)) {
      expect(list.length, p).toBeGreaterThan(0);
      for (const a of list) expect(audiences.has(a), `${p}: ${a}`).toBe(true);
    }
  });

  it("denies by default: an unknown method is refused to every role and to edges, allowed to break-glass", () => {
    const p = "tollgate.future.v1.FutureService/DoSomething";
    for (const r of ROLES) expect(isAllowed(p, person([r]))).toBe(false);
    expect(isAllowed(p, person([...ROLES]))).toBe(false);
    expect(isAllowed(p, edge)).toBe(false);
    expect(isAllowed(p, undefined)).toBe(false);
    expect(isAllowed(p, breakGlass)).toBe(true);
    expect(isAllowed("__proto__", person(["admin"]))).toBe(false);
    expect(isAllowed("constructor", person(["admin"]))).toBe(false);
  });

  it("gives each role what the roles table in docs/identity.md says", () => {
    const cases: [string, Caller | undefined, boolean][] = [
      ["tollgate.connection.v1.ConnectionService/CreateConnection", person(["admin"]), true],
      ["tollgate.connection.v1.ConnectionService/CreateConnection", person(["auditor"]), false],
      ["tollgate.connection.v1.ConnectionService/CreateConnection", person(["approver"]), false],
      ["tollgate.connection.v1.ConnectionService/CreateConnection", person(["agent"]), false],
      ["tollgate.connection.v1.ConnectionService/CreateConnection", edge, false],
      ["tollgate.connection.v1.ConnectionService/DeleteConnection", person(["auditor", "approver", "agent"]), false],
      ["tollgate.connection.v1.ConnectionService/ListConnections", person(["approver"]), true],
      ["tollgate.connection.v1.ConnectionService/ListConnections", person(["auditor"]), false],
      ["tollgate.audit.v1.AuditService/QueryEvents", person(["auditor"]), true],
      ["tollgate.audit.v1.AuditService/QueryEvents", person(["agent"]), false],
      ["tollgate.audit.v1.AuditService/QueryEvents", edge, false],
      ["tollgate.audit.v1.AuditService/TailEvents", person(["auditor"]), true],
      ["tollgate.audit.v1.AuditService/ListAlerts", person(["auditor"]), true],
      ["tollgate.audit.v1.AuditService/ListAlerts", person(["approver"]), false],
      ["tollgate.edge.v1.EdgeService/ListEdges", person(["auditor"]), true],
      ["tollgate.edge.v1.EdgeService/GetEdgeConfig", person(["admin"]), false],
      ["tollgate.edge.v1.EdgeService/GetEdgeConfig", edge, true],
      ["tollgate.edge.v1.EdgeService/GetEdgeConfig", breakGlass, true],
      ["tollgate.edge.v1.EdgeService/RegisterEdgeKey", person(["admin"]), false],
      ["tollgate.edge.v1.EdgeService/RegisterEdgeKey", edge, true],
      ["tollgate.credential.v1.CredentialService/IssueCredential", person(["agent"]), true],
      ["tollgate.credential.v1.CredentialService/IssueCredential", person(["auditor"]), false],
      ["tollgate.credential.v1.CredentialService/IssueCredential", edge, false],
      ["tollgate.workload.v1.WorkloadService/CreateTrustRule", person(["admin"]), true],
      ["tollgate.workload.v1.WorkloadService/CreateTrustRule", person(["auditor", "approver", "agent"]), false],
      ["tollgate.workload.v1.WorkloadService/ListServiceAccounts", person(["auditor"]), false],
      ["tollgate.workload.v1.WebIdentityService/ExchangeWebIdentity", edge, true],
      ["tollgate.workload.v1.WebIdentityService/ExchangeWebIdentity", person(["admin", "agent"]), false],
      ["tollgate.identity.v1.IdentityService/Login", undefined, true],
      ["tollgate.identity.v1.IdentityService/GetLoginConfig", undefined, true],
      ["tollgate.identity.v1.IdentityService/WhoAmI", undefined, false],
      ["tollgate.identity.v1.IdentityService/WhoAmI", person([]), true],
      ["tollgate.identity.v1.IdentityService/WhoAmI", edge, true],
    ];
    for (const [p, caller, allowed] of cases) {
      expect(isAllowed(p, caller), `${p} for ${caller?.kind ?? "nobody"} ${caller?.roles.join("+") ?? ""}`).toBe(
        allowed,
      );
    }
  });

  it("lets a caller with no role call nothing but the `authenticated` methods", () => {
    const nobody = person([]);
    for (const [p, list] of Object.entries(METHOD_ACCESS)) {
      expect(isAllowed(p, nobody), p).toBe(list.includes("authenticated") || list.includes("public"));
    }
  });
});
