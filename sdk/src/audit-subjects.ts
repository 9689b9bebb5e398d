/**
 * JetStream subject layout for audit events:
 *
 *   <prefix>.audit.v1.<connection>.<principal>.<service>.<operation>
 *
 * Each variable token is encoded with {@link encodeSubjectToken} so that dots, wildcards and
 * spaces in names cannot change the subject's shape. A SIEM filters with ordinary NATS
 * wildcards, e.g. `tollgate.audit.v1.prod.*.s3.>`.
 */

/** Default subject prefix. */
export const DEFAULT_AUDIT_SUBJECT_PREFIX = "tollgate";
/** Default JetStream stream name. */
export const DEFAULT_AUDIT_STREAM = "TOLLGATE_AUDIT";

const SAFE = /^[A-Za-z0-9_-]$/;

/**
 * Encodes one subject token: characters outside `[A-Za-z0-9_-]` become `%XX` (UTF-8 bytes),
 * and the empty string becomes `_`.
 */
export function encodeSubjectToken(value: string): string {
  if (value === "") return "_";
  let out = "";
  for (const ch of value) {
    if (SAFE.test(ch)) {
      out += ch;
    } else {
      for (const b of Buffer.from(ch, "utf8")) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

/** Reverses {@link encodeSubjectToken}. */
export function decodeSubjectToken(token: string): string {
  if (token === "_") return "";
  return decodeURIComponent(token);
}

/** The parts of an audit subject. */
export interface AuditSubjectParts {
  connection: string;
  principal: string;
  service: string;
  operation: string;
}

/** Builds the subject an event is published on. */
export function auditSubject(prefix: string, parts: AuditSubjectParts): string {
  return [
    prefix,
    "audit",
    "v1",
    encodeSubjectToken(parts.connection),
    encodeSubjectToken(parts.principal),
    encodeSubjectToken(parts.service),
    encodeSubjectToken(parts.operation),
  ].join(".");
}

/** Subject filter matching every audit event under `prefix` (for stream configuration). */
export function auditStreamSubject(prefix: string): string {
  return `${prefix}.audit.>`;
}

/**
 * Subject of an edge's signed chain checkpoints: `<prefix>.checkpoint.v1.<edge>`, the edge name
 * encoded with {@link encodeSubjectToken}.
 */
export function auditCheckpointSubject(prefix: string, edge: string): string {
  return `${prefix}.checkpoint.v1.${encodeSubjectToken(edge)}`;
}

/** Subject filter matching every checkpoint under `prefix` (for stream configuration). */
export function auditCheckpointStreamSubject(prefix: string): string {
  return `${prefix}.checkpoint.>`;
}

/** Builds a subject filter; unset parts become `*`. */
export function auditFilterSubject(prefix: string, parts: Partial<AuditSubjectParts>): string {
  const tok = (v: string | undefined): string => (v === undefined || v === "" ? "*" : encodeSubjectToken(v));
  return [
    prefix,
    "audit",
    "v1",
    tok(parts.connection),
    tok(parts.principal),
    tok(parts.service),
    tok(parts.operation),
  ].join(".");
}

/** Subject the control plane publishes integrity alerts on: `<prefix>.alert.v1.<edge>`. */
export function auditAlertSubject(prefix: string, edge: string): string {
  return `${prefix}.alert.v1.${encodeSubjectToken(edge)}`;
}
