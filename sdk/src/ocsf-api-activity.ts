import type { AuditEvent } from "@tollgate/proto";
import { Decision } from "@tollgate/proto";

/**
 * OCSF 1.1 "API Activity" (class 6003) rendering of a Tollgate audit event, following the field
 * choices of AWS Security Lake's CloudTrail mapping: the same CloudTrail record maps to the same
 * OCSF fields, with Tollgate's own context kept under `unmapped.tollgate`.
 */
export interface OcsfApiActivity {
  class_uid: 6003;
  class_name: "API Activity";
  category_uid: 6;
  category_name: "Application Activity";
  activity_id: number;
  activity_name: string;
  type_uid: number;
  type_name: string;
  severity_id: number;
  severity: string;
  status_id: number;
  status: string;
  status_code?: string;
  status_detail?: string;
  time: number;
  metadata: {
    version: string;
    uid: string;
    event_code: string;
    profiles: string[];
    product: { name: string; vendor_name: string; version: string; feature: { name: string } };
  };
  api: {
    operation: string;
    service: { name: string };
    version?: string;
    request: { uid: string };
    response?: { error?: string; message?: string };
  };
  actor: {
    user: { uid: string; type: string; credential_uid: string };
    invoked_by?: string;
  };
  src_endpoint: { ip: string };
  http_request: { user_agent: string };
  cloud: { provider: "AWS"; region: string; account?: { uid: string } };
  resources: Array<{ uid: string; type: string }>;
  unmapped: Record<string, unknown>;
}

/** OCSF schema version this rendering targets. */
export const OCSF_VERSION = "1.1.0";

const ACTIVITIES: ReadonlyArray<readonly [RegExp, number, string]> = [
  [
    /^(Create|Add|Put|Upload|Register|Run|Start|Issue|Import|Allocate|Associate|Attach|Send|Publish|Invoke)/,
    1,
    "Create",
  ],
  [/^(Get|Describe|List|Head|Query|Scan|BatchGet|Lookup|Search|Select|Check|Validate)/, 2, "Read"],
  [/^(Update|Modify|Set|Change|Enable|Disable|Tag|Untag|Reset|Restore|Copy|Complete|Replace)/, 3, "Update"],
  [/^(Delete|Remove|Terminate|Deregister|Revoke|Detach|Disassociate|Abort|Release|Purge)/, 4, "Delete"],
];

/** Maps an API operation name to OCSF's activity (Security Lake uses the verb prefix too). */
export function ocsfActivity(eventName: string, readOnly: boolean): { id: number; name: string } {
  for (const [re, id, name] of ACTIVITIES) {
    if (re.test(eventName)) return { id, name };
  }
  return readOnly ? { id: 2, name: "Read" } : { id: 99, name: "Other" };
}

/** Renders one audit event as an OCSF API Activity record. */
export function renderOcsfApiActivity(event: AuditEvent): OcsfApiActivity {
  const activity = ocsfActivity(event.eventName, event.readOnly);
  const failed = event.errorCode !== undefined || event.tollgate?.decision === Decision.DENY;
  const record: OcsfApiActivity = {
    class_uid: 6003,
    class_name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
    activity_id: activity.id,
    activity_name: activity.name,
    type_uid: 600300 + activity.id,
    type_name: `API Activity: ${activity.name}`,
    severity_id: 1,
    severity: "Informational",
    status_id: failed ? 2 : 1,
    status: failed ? "Failure" : "Success",
    time: Date.parse(event.eventTime),
    metadata: {
      version: OCSF_VERSION,
      uid: event.eventId,
      event_code: event.eventType,
      profiles: ["cloud"],
      product: { name: "Tollgate", vendor_name: "Tollgate", version: event.eventVersion, feature: { name: "edge" } },
    },
    api: {
      operation: event.eventName,
      service: { name: event.eventSource },
      request: { uid: event.requestId },
    },
    actor: {
      user: {
        uid: event.userIdentity?.principalId ?? "",
        type: event.userIdentity?.type ?? "",
        credential_uid: event.userIdentity?.accessKeyId ?? "",
      },
    },
    src_endpoint: { ip: event.sourceIpAddress },
    http_request: { user_agent: event.userAgent },
    cloud: {
      provider: "AWS",
      region: event.awsRegion,
      ...(event.recipientAccountId !== "" ? { account: { uid: event.recipientAccountId } } : {}),
    },
    resources: event.resources.map((r) => ({ uid: r.arn, type: r.type })),
    unmapped: {
      readOnly: event.readOnly,
      ...(event.requestParameters !== undefined ? { requestParameters: event.requestParameters } : {}),
      ...(event.responseElements !== undefined ? { responseElements: event.responseElements } : {}),
      ...(event.tollgate !== undefined
        ? {
            tollgate: {
              connection: event.tollgate.connection,
              edge: event.tollgate.edge,
              decision: Decision[event.tollgate.decision],
              reason: event.tollgate.reason,
              durationMs: event.tollgate.durationMs,
              httpStatus: event.tollgate.httpStatus,
              bytesIn: Number(event.tollgate.bytesIn),
              bytesOut: Number(event.tollgate.bytesOut),
              signingName: event.tollgate.signingName,
              credentialId: event.tollgate.credentialId,
              traceId: event.tollgate.traceId,
            },
          }
        : {}),
    },
  };
  if (event.errorCode !== undefined) {
    record.status_code = event.errorCode;
    record.api.response = {
      error: event.errorCode,
      ...(event.errorMessage !== undefined ? { message: event.errorMessage } : {}),
    };
  }
  if (event.errorMessage !== undefined) record.status_detail = event.errorMessage;
  return record;
}
