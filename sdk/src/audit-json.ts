import { fromJsonString } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema } from "@tollgate/proto";
import { auditEventToJsonString } from "./audit-codec.js";

/**
 * Audit events travel as JSON with CloudTrail's field names (the proto `json_name`s).
 * Implicit defaults are written out so every record has the same keys, as CloudTrail's do.
 * (The text is `toJsonString(AuditEventSchema, event, { alwaysEmitImplicit: true })`, written
 * by audit-codec.ts without reflection.)
 */
export function auditEventToJson(event: AuditEvent): string {
  return auditEventToJsonString(event);
}

/** Parses an audit event published by {@link auditEventToJson}; unknown fields are ignored. */
export function auditEventFromJson(json: string): AuditEvent {
  return fromJsonString(AuditEventSchema, json, { ignoreUnknownFields: true });
}
