import { create } from "@bufbuild/protobuf";
import type { JetStreamClient } from "@nats-io/jetstream";
import { type AuditEvent, AuditEventSchema, Decision } from "@tollgate/proto";
import { auditEventToJson, auditSubject, newEventId } from "@tollgate/sdk";
import type { Logger } from "./logger.js";

/** `tollgate.edge` of events the control plane records itself (unchained, like an edge without a chain). */
export const CONTROL_PLANE_EDGE = "control-plane";

/** One call to the control plane's own API worth an audit event (credential exchanges). */
export interface ControlPlaneCall {
  eventName: string;
  principal: string;
  /** "TollgateServiceAccount", ... */
  identityType: string;
  /** Public id of the key the caller presented (never the key). */
  accessKeyId: string;
  connection: string;
  allowed: boolean;
  reason: string;
  authMethod: string;
  sourceIp: string;
  userAgent: string;
  credentialId?: string;
  errorCode?: string;
  errorMessage?: string;
  requestParameters?: Record<string, string | number>;
  responseElements?: Record<string, string | number>;
}

/**
 * Publishes audit events for calls the control plane serves itself (a service account's API key
 * exchanged for a gateway credential) on the audit stream, with eventSource `tollgate` and
 * `tollgate.edge` "control-plane". They are not hash-chained (sequence 0), so the ingest indexes
 * them as unchained events.
 */
export class ControlPlaneAudit {
  readonly #js: JetStreamClient;
  readonly #subjectPrefix: string;
  readonly #logger: Logger;

  constructor(js: JetStreamClient, subjectPrefix: string, logger: Logger) {
    this.#js = js;
    this.#subjectPrefix = subjectPrefix;
    this.#logger = logger;
  }

  /** Publishes the event and waits for the stream's ack; throws when it cannot be stored. */
  async record(call: ControlPlaneCall): Promise<AuditEvent> {
    const event = create(AuditEventSchema, {
      eventVersion: "1.0",
      eventId: newEventId(),
      eventTime: new Date().toISOString(),
      eventSource: "tollgate",
      eventName: call.eventName,
      awsRegion: "",
      sourceIpAddress: call.sourceIp,
      userAgent: call.userAgent,
      userIdentity: { type: call.identityType, principalId: call.principal, accessKeyId: call.accessKeyId },
      ...(call.requestParameters !== undefined ? { requestParameters: call.requestParameters } : {}),
      ...(call.responseElements !== undefined ? { responseElements: call.responseElements } : {}),
      ...(call.errorCode !== undefined ? { errorCode: call.errorCode } : {}),
      ...(call.errorMessage !== undefined ? { errorMessage: call.errorMessage } : {}),
      readOnly: false,
      eventType: "AwsApiCall",
      eventCategory: "Management",
      managementEvent: true,
      tollgate: {
        connection: call.connection,
        edge: CONTROL_PLANE_EDGE,
        decision: call.allowed ? Decision.ALLOW : Decision.DENY,
        reason: call.reason,
        signingName: "tollgate",
        credentialId: call.credentialId ?? "",
        authMethod: call.authMethod,
        outcome: "completed",
      },
    });
    event.requestId = event.eventId;
    const subject = auditSubject(this.#subjectPrefix, {
      connection: call.connection,
      principal: call.principal,
      service: "tollgate",
      operation: call.eventName,
    });
    await this.#js.publish(subject, auditEventToJson(event), { msgID: event.eventId });
    this.#logger.debug({ eventID: event.eventId, subject }, "control-plane audit event published");
    return event;
  }
}
