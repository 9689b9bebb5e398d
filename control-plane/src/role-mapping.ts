import { ROLES, type Role } from "./token-auth.js";

/**
 * One role-mapping rule: when the identity's claim (OIDC) or attribute (SAML) `claim` equals
 * `value` (or, for a list such as `groups`, contains it), grant `roles`, and for `agent`, the
 * listed `connections` (`*` = any).
 */
export interface RoleRule {
  claim: string;
  /** Value to match exactly; `*` matches any non-empty value. */
  value: string;
  roles: Role[];
  connections?: string[];
}

/** What the rules granted. */
export interface MappedRoles {
  roles: Role[];
  connections: string[];
}

/** Error in a role-map document. */
export class RoleMapError extends Error {
  override readonly name = "RoleMapError";
}

/**
 * Parses a role map, a JSON array of {@link RoleRule}, e.g.
 * `[{"claim":"groups","value":"tollgate-admins","roles":["admin"]}]`.
 */
export function parseRoleMap(text: string): RoleRule[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RoleMapError("role map is not JSON");
  }
  if (!Array.isArray(parsed)) throw new RoleMapError("role map must be a JSON array of rules");
  return parsed.map((entry: unknown, i) => {
    if (typeof entry !== "object" || entry === null) throw new RoleMapError(`rule ${i} is not an object`);
    const { claim, value, roles, connections, ...rest } = entry as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw new RoleMapError(`rule ${i}: unknown field ${Object.keys(rest)[0]}`);
    if (typeof claim !== "string" || claim === "") throw new RoleMapError(`rule ${i}: claim must be a string`);
    if (typeof value !== "string" || value === "") throw new RoleMapError(`rule ${i}: value must be a string`);
    if (!Array.isArray(roles) || roles.length === 0) throw new RoleMapError(`rule ${i}: roles must be a list`);
    for (const r of roles) {
      if (!(ROLES as readonly unknown[]).includes(r)) {
        throw new RoleMapError(`rule ${i}: unknown role ${JSON.stringify(r)} (${ROLES.join(", ")})`);
      }
    }
    if (connections !== undefined && (!Array.isArray(connections) || connections.some((c) => typeof c !== "string"))) {
      throw new RoleMapError(`rule ${i}: connections must be a list of names`);
    }
    return {
      claim,
      value,
      roles: roles as Role[],
      ...(connections === undefined ? {} : { connections: connections as string[] }),
    };
  });
}

function claimMatches(actual: unknown, wanted: string): boolean {
  if (Array.isArray(actual)) return actual.some((v) => claimMatches(v, wanted));
  if (typeof actual !== "string" || actual === "") return false;
  return wanted === "*" || actual === wanted;
}

/** Applies every matching rule; roles and connections are the union. */
export function mapRoles(claims: Readonly<Record<string, unknown>>, rules: readonly RoleRule[]): MappedRoles {
  const roles = new Set<Role>();
  const connections = new Set<string>();
  for (const rule of rules) {
    if (!Object.hasOwn(claims, rule.claim) || !claimMatches(claims[rule.claim], rule.value)) continue;
    for (const r of rule.roles) roles.add(r);
    for (const c of rule.connections ?? []) connections.add(c);
  }
  return { roles: ROLES.filter((r) => roles.has(r)), connections: [...connections].sort() };
}
