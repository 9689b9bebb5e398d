/**
 * Redaction of secret material in AWS request parameters and response elements before they are
 * written to the audit trail. The marker is the one CloudTrail uses, so audit consumers that know
 * CloudTrail recognise it.
 *
 * The primary source is AWS's own models: every member path marked `sensitive` for the operation's
 * request or response (see `aws-models.ts`). A name-based list stays as a fallback for services and
 * operations newer than the pinned models.
 */
import { awsModels } from "./aws-models.js";

/** CloudTrail's marker for a value withheld from the audit record. */
export const REDACTED = "HIDDEN_DUE_TO_SECURITY_REASONS";

/** Whether the value is a request parameter or a response element. */
export type RedactionDirection = "request" | "response";

/**
 * Member names whose value is secret wherever they appear, in any service, in either direction.
 * Compared lower-cased against the exact member name (so `PasswordPolicy` or `PasswordData` are
 * not matched). Flattened query-protocol keys such as `Foo.member.1.Password` are matched on their
 * last non-numeric segment.
 */
const SENSITIVE_MEMBER_NAMES: ReadonlySet<string> = new Set(
  [
    // Secrets Manager
    "SecretString",
    "SecretBinary",
    // Credentials (STS Credentials, IAM CreateAccessKey, Cognito identity, ...)
    "SecretAccessKey",
    "SessionToken",
    "SecurityToken",
    // Passwords (IAM login profiles, RDS/Redshift/DocDB master users, Cognito, ...)
    "Password",
    "NewPassword",
    "OldPassword",
    "PreviousPassword",
    "ProposedPassword",
    "MasterUserPassword",
    "ServicePassword",
    // Keys and key material (IAM server certificates, ACM, EC2 CreateKeyPair, KMS data keys)
    "PrivateKey",
    "Passphrase",
    "KeyMaterial",
    "Plaintext",
    // IAM virtual MFA seeds
    "Base32StringSeed",
    "QRCodePNG",
    // OAuth-style tokens and client secrets (Cognito, ElastiCache AUTH)
    "ClientSecret",
    "AccessToken",
    "RefreshToken",
    "IdToken",
    "AuthToken",
    // Query-string authentication (presigned URLs): bearer material until it expires
    "X-Amz-Security-Token",
    "X-Amz-Signature",
  ].map((name) => name.toLowerCase()),
);

/** Maximum nesting depth inspected; deeper subtrees are withheld entirely (fail closed). */
const MAX_DEPTH = 256;

interface RedactionContext {
  service: string;
  operation: string;
  direction: RedactionDirection;
  /** Sensitive member paths from the models (`*` = any map key). */
  modelPaths: ReadonlyArray<readonly string[]>;
}

/**
 * Returns a deep copy of `value` (plain objects and arrays; other values are returned as they
 * are) with secret members replaced by {@link REDACTED}.
 *
 * Rules:
 * - any member path the AWS model marks `sensitive` for this operation and direction (service
 *   given as model key such as `"sesv2"` or as signing name, whose services are searched for the
 *   operation); a sensitive structure or map keeps its keys and has every leaf value replaced;
 * - any member in the global list (secret strings, secret keys, session tokens, passwords,
 *   private keys, KMS plaintext, ...), matched case-insensitively on the member name;
 * - SSM `PutParameter` request `Value`; `GetParameter` response `Parameter.Value`;
 *   `GetParameters`/`GetParametersByPath`/`GetParameterHistory` response `Parameters[].Value`;
 * - every value of an `Environment.Variables` map (Lambda function configuration).
 *
 * Ciphertext (`CiphertextBlob`) and DynamoDB item values are not redacted, except that an item
 * attribute literally named like a global secret member (e.g. `Password`) is.
 *
 * Subtrees nested deeper than 256 levels are replaced by {@link REDACTED}, so hostile input can
 * neither overflow the stack nor smuggle secrets past the walk.
 *
 * @param service - short service name (SigV4 signing name), e.g. `"ssm"`.
 * @param operation - API operation name, e.g. `"PutParameter"`.
 * @param value - parsed request parameters or response elements; not modified.
 * @param direction - whether `value` is a request or a response.
 */
export function redactSensitive(
  service: string,
  operation: string,
  value: unknown,
  direction: RedactionDirection,
): unknown {
  const lower = service.toLowerCase();
  return walk(
    { service: lower, operation, direction, modelPaths: modelPaths(lower, operation, direction) },
    value,
    [],
    0,
  );
}

function modelPaths(
  service: string,
  operation: string,
  direction: RedactionDirection,
): ReadonlyArray<readonly string[]> {
  const models = awsModels();
  const own = models.byKey(service);
  const candidates = own !== undefined ? [own, ...models.bySigningName(service)] : models.bySigningName(service);
  const op = candidates.find((m) => m.operations.has(operation))?.operations.get(operation);
  if (op === undefined) return [];
  return direction === "request" ? op.sensitiveRequest : op.sensitiveResponse;
}

/** Query-protocol keys (`Attributes.member.1.Password`) as member segments. */
function memberSegments(path: readonly string[]): string[] {
  const out: string[] = [];
  for (const key of path) {
    for (const part of key.includes(".") ? key.split(".") : [key]) {
      if (part === "" || part === "member" || /^\d+$/.test(part)) continue;
      out.push(part);
    }
  }
  return out;
}

function matchesModelPath(ctx: RedactionContext, path: readonly string[]): boolean {
  if (ctx.modelPaths.length === 0) return false;
  const segments = memberSegments(path);
  return ctx.modelPaths.some(
    (model) => model.length === segments.length && model.every((part, i) => part === "*" || part === segments[i]),
  );
}

/** A sensitive structure, list or map keeps its shape (keys) and loses every leaf value. */
function redactLeaves(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return REDACTED;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactLeaves(item, depth + 1));
  if (!isPlainObject(value)) return REDACTED;
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    setData(out, key, redactLeaves(member, depth + 1));
  }
  return out;
}

function walk(ctx: RedactionContext, value: unknown, path: readonly string[], depth: number): unknown {
  if (value === null || typeof value !== "object") {
    return value;
  }
  if (depth >= MAX_DEPTH) {
    return REDACTED;
  }
  if (Array.isArray(value)) {
    // Array elements share the member path of the array itself.
    return value.map((item) => walk(ctx, item, path, depth + 1));
  }
  if (!isPlainObject(value)) {
    return value;
  }
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    const memberPath = [...path, key];
    let copy: unknown;
    if (matchesModelPath(ctx, memberPath)) copy = redactLeaves(member, depth + 1);
    else if (isSensitiveMember(ctx, memberPath)) copy = REDACTED;
    else copy = walk(ctx, member, memberPath, depth + 1);
    setData(out, key, copy);
  }
  return out;
}

/**
 * Adds an own data member. A member named "__proto__" is defined (assigning it would alter the
 * prototype); any other is assigned, which is the same on a plain object (Object.prototype has
 * no other setter) and much cheaper than defineProperty.
 */
function setData(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  } else out[key] = value;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isSensitiveMember(ctx: RedactionContext, path: readonly string[]): boolean {
  const name = path[path.length - 1];
  if (name === undefined) {
    return false;
  }
  if (isGloballySensitiveName(name)) {
    return true;
  }
  if (isEnvironmentVariable(path)) {
    return true;
  }
  if (ctx.service === "ssm") {
    return isSsmParameterValue(ctx, path);
  }
  return false;
}

function isGloballySensitiveName(name: string): boolean {
  const lower = name.toLowerCase();
  if (SENSITIVE_MEMBER_NAMES.has(lower)) {
    return true;
  }
  if (!lower.includes(".")) {
    return false;
  }
  // Flattened query-protocol key, e.g. "Attributes.member.1.Password": judge the member name.
  const segments = lower.split(".").filter((segment) => segment !== "" && !/^\d+$/.test(segment));
  const last = segments[segments.length - 1];
  return last !== undefined && SENSITIVE_MEMBER_NAMES.has(last);
}

/** `...Environment.Variables.<NAME>`: the values of a Lambda environment map. */
function isEnvironmentVariable(path: readonly string[]): boolean {
  if (path.length < 3) {
    return false;
  }
  return path[path.length - 2]?.toLowerCase() === "variables" && path[path.length - 3]?.toLowerCase() === "environment";
}

const SSM_PARAMETER_LIST_RESPONSES: ReadonlySet<string> = new Set([
  "GetParameters",
  "GetParametersByPath",
  "GetParameterHistory",
]);

function isSsmParameterValue(ctx: RedactionContext, path: readonly string[]): boolean {
  if (ctx.direction === "request") {
    return ctx.operation === "PutParameter" && path.length === 1 && path[0] === "Value";
  }
  if (path.length !== 2 || path[1] !== "Value") {
    return false;
  }
  if (ctx.operation === "GetParameter") {
    return path[0] === "Parameter";
  }
  return SSM_PARAMETER_LIST_RESPONSES.has(ctx.operation) && path[0] === "Parameters";
}
