import { fromJsonString } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema } from "@tollgate/proto";
import { auditEventToJsonString } from "./audit-codec.js";
import { fastFromJson } from "./fast-from-json.js";

/**
 * Audit events travel as JSON with CloudTrail's field names (the proto `json_name`s).
 * Implicit defaults are written out so every record has the same keys, as CloudTrail's do.
 * (The text is `toJsonString(AuditEventSchema, event, { alwaysEmitImplicit: true })`, written
 * by audit-codec.ts without reflection.)
 */
export function auditEventToJson(event: AuditEvent): string {
  return auditEventToJsonString(event);
}

/**
 * Parses an audit event published by {@link auditEventToJson}; unknown fields are ignored.
 * JSON exactly as {@link auditEventToJson} writes it takes a faster path ({@link fastFromJson})
 * that gives the same event; anything else goes through `fromJsonString`.
 */
export function auditEventFromJson(json: string): AuditEvent {
  return fastFromJson(AuditEventSchema, json) ?? fromJsonString(AuditEventSchema, json, { ignoreUnknownFields: true });
}
