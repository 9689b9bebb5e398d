import { describe, expect, it } from "vitest";
import { mapRoles, parseRoleMap, RoleMapError } from "./role-mapping.js";

describe("role map", () => {
  const rules = parseRoleMap(
    JSON.stringify([
      { claim: "groups", value: "tollgate-admins", roles: ["admin"] },
      { claim: "groups", value: "tollgate-auditors", roles: ["auditor"] },
      { claim: "department", value: "security", roles: ["auditor", "approver"] },
      { claim: "groups", value: "ci", roles: ["agent"], connections: ["staging"] },
      { claim: "groups", value: "ci-prod", roles: ["agent"], connections: ["prod"] },
    ]),
  );

  it("grants the union of every matching rule, for list and string claims", () => {
    expect(mapRoles({ groups: ["tollgate-auditors", "other"] }, rules)).toEqual({
      roles: ["auditor"],
      connections: [],
    });
    expect(mapRoles({ groups: ["tollgate-admins"], department: "security" }, rules)).toEqual({
      roles: ["admin", "auditor", "approver"],
      connections: [],
    });
    expect(mapRoles({ groups: ["ci", "ci-prod"] }, rules)).toEqual({
      roles: ["agent"],
      connections: ["prod", "staging"],
    });
  });

  it("matches exactly: no substrings, no case folding, no non-string values", () => {
    expect(mapRoles({ groups: ["tollgate-admins-x", "TOLLGATE-ADMINS"] }, rules).roles).toEqual([]);
    expect(mapRoles({ groups: "tollgate-admin" }, rules).roles).toEqual([]);
    expect(mapRoles({ groups: [{ name: "tollgate-admins" }] }, rules).roles).toEqual([]);
    expect(mapRoles({}, rules).roles).toEqual([]);
  });

  it("* matches any non-empty value", () => {
    const any = parseRoleMap('[{"claim":"email","value":"*","roles":["auditor"]}]');
    expect(mapRoles({ email: "a@b" }, any).roles).toEqual(["auditor"]);
    expect(mapRoles({ email: "" }, any).roles).toEqual([]);
  });

  it("refuses bad documents with a reason", () => {
    expect(() => parseRoleMap("nope")).toThrow(RoleMapError);
    expect(() => parseRoleMap("{}")).toThrow(/JSON array/);
    expect(() => parseRoleMap('[{"claim":"groups","value":"x","roles":["root"]}]')).toThrow(/unknown role "root"/);
    expect(() => parseRoleMap('[{"claim":"groups","value":"x","roles":[]}]')).toThrow(/roles must be a list/);
    expect(() => parseRoleMap('[{"claim":"groups","value":"x","roles":["admin"],"extra":1}]')).toThrow(
      /unknown field extra/,
    );
    expect(() => parseRoleMap('[{"claim":"groups","roles":["admin"]}]')).toThrow(/value must be a string/);
  });
});
