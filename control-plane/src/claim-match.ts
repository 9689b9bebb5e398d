/**
 * Claim tests of trust rules: globs, anchored regular expressions, principal templates.
 */

/** A glob (`*` any run of characters, `?` one character, everything else literal) as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (const ch of glob) {
    if (ch === "*") source += "[\\s\\S]*";
    else if (ch === "?") source += "[\\s\\S]";
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "u");
}

/** Compiles a rule's regex anchored to the whole value; throws SyntaxError when invalid. */
export function anchoredRegExp(regex: string): RegExp {
  return new RegExp(`^(?:${regex})$`, "u");
}

/**
 * A claim's value: the top-level member named `path` if there is one (claims like
 * `kubernetes.io` contain dots), else the member reached by following the dots.
 */
export function claimValue(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  const parts = path.split(".");
  // Longest top-level prefix first, so `kubernetes.io.namespace` finds `kubernetes.io` → `namespace`.
  for (let i = parts.length - 1; i >= 1; i--) {
    const head = parts.slice(0, i).join(".");
    if (!Object.hasOwn(payload, head)) continue;
    const inner = payload[head];
    if (typeof inner !== "object" || inner === null || Array.isArray(inner)) return undefined;
    return claimValue(inner as Record<string, unknown>, parts.slice(i).join("."));
  }
  return undefined;
}

/** The string forms of a claim value: a string, a number/boolean, or the scalar elements of an array. */
export function claimStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (typeof value === "number" || typeof value === "boolean") return [String(value)];
  if (Array.isArray(value)) return value.flatMap((v) => (Array.isArray(v) ? [] : claimStrings(v)));
  return [];
}

/** Thrown by {@link renderPrincipalTemplate} when a placeholder's claim is missing or not a single string. */
export class MissingClaimError extends Error {
  constructor(readonly claim: string) {
    super(`claim ${claim} is missing or not a string`);
    this.name = "MissingClaimError";
  }
}

const PLACEHOLDER = /\{([^{}]+)\}/g;

/** Replaces each `{claim}` of `template` by the claim's value (a string or number). */
export function renderPrincipalTemplate(template: string, payload: Record<string, unknown>): string {
  return template.replace(PLACEHOLDER, (_, claim: string) => {
    const v = claimValue(payload, claim);
    if (typeof v === "string" || typeof v === "number") return String(v);
    throw new MissingClaimError(claim);
  });
}

/** The claims a template names. */
export function templateClaims(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
}
