import type { JsonObject } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import type { Classification } from "./aws-classifier.js";

/** Everything known about one call when its record is written. */
export interface CallRecord {
  eventId: string;
  eventTimeMs: number;
  sourceIp: string;
  userAgent: string;
  classification: Classification;
  principal: string;
  authenticated: boolean;
  accessKeyId: string;
  credentialId: string;
  connection: string;
  /** SigV4 signing name the caller used ("" when unknown). */
  signingName: string;
  accountId: string;
  edge: string;
  allowed: boolean;
  reason: string;
  httpStatus: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  requestId: string;
  errorCode?: string;
  errorMessage?: string;
  responseElements: Record<string, unknown> | null;
  traceId: string;
}

/** Keeps only JSON values (drops undefined, converts Buffers) so Struct fields accept it. */
function toJsonObject(value: Record<string, unknown> | null): JsonObject | undefined {
  if (value === null) return undefined;
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

/** Builds the audit event (CloudTrail record plus Tollgate context) for a call. */
export function buildAuditEvent(r: CallRecord): AuditEvent {
  const c = r.classification;
  const requestParameters = toJsonObject(c.requestParameters);
  const responseElements = toJsonObject(r.responseElements);
  return create(AuditEventSchema, {
    eventVersion: "1.0",
    eventId: r.eventId,
    eventTime: new Date(r.eventTimeMs).toISOString(),
    eventSource: c.eventSource,
    eventName: c.eventName,
    awsRegion: c.awsRegion,
    sourceIpAddress: r.sourceIp,
    userAgent: r.userAgent,
    userIdentity: {
      type: r.authenticated ? "TollgatePrincipal" : "Unauthenticated",
      principalId: r.principal,
      accessKeyId: r.accessKeyId,
    },
    ...(requestParameters !== undefined ? { requestParameters } : {}),
    ...(responseElements !== undefined ? { responseElements } : {}),
    ...(r.errorCode !== undefined ? { errorCode: r.errorCode } : {}),
    ...(r.errorMessage !== undefined ? { errorMessage: r.errorMessage } : {}),
    requestId: r.requestId,
    readOnly: c.readOnly,
    resources: c.resources.map((x) => ({ arn: x.arn, type: x.type })),
    eventType: "AwsApiCall",
    recipientAccountId: r.accountId,
    tollgate: {
      connection: r.connection,
      edge: r.edge,
      decision: r.allowed ? Decision.ALLOW : Decision.DENY,
      reason: r.reason,
      durationMs: Math.round(r.durationMs * 1000) / 1000,
      httpStatus: r.httpStatus,
      bytesIn: BigInt(r.bytesIn),
      bytesOut: BigInt(r.bytesOut),
      signingName: r.signingName !== "" ? r.signingName : c.service,
      credentialId: r.credentialId,
      traceId: r.traceId,
    },
  });
}
