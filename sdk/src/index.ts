/**
 * @tollgate/sdk: the typed control-plane client and the wire formats that the control plane
 * and edge agents share (gateway credentials, audit subjects, audit JSON).
 */

export type { ChainProblem, ChainProblemKind, EdgeSigningKey } from "./audit-chain.js";
export {
  ChainVerifier,
  chainEvent,
  checkpointSigningText,
  computeEventHash,
  edgeKeyId,
  generateEdgeSigningKey,
  signCheckpoint,
  verifyCheckpoint,
} from "./audit-chain.js";
export { auditEventToBinary } from "./audit-codec.js";
export { auditEventFromJson, auditEventToJson } from "./audit-json.js";
export type { AuditSubjectParts } from "./audit-subjects.js";
export {
  auditAlertSubject,
  auditCheckpointStreamSubject,
  auditCheckpointSubject,
  auditFilterSubject,
  auditStreamSubject,
  auditSubject,
  DEFAULT_AUDIT_STREAM,
  DEFAULT_AUDIT_SUBJECT_PREFIX,
  decodeSubjectToken,
  encodeSubjectToken,
} from "./audit-subjects.js";
export type { ControlPlaneClient, ControlPlaneClientOptions } from "./control-plane-client.js";
export { createControlPlaneClient } from "./control-plane-client.js";
export type { ReferenceSigV4Credentials, SignedAwsQueryOptions, SignedAwsQueryResponse } from "./dev/aws-query.js";
export { referenceSigV4Signer, signedAwsQuery } from "./dev/aws-query.js";
export type { MotoServer, MotoServerOptions } from "./dev/moto-server.js";
export { startMotoServer } from "./dev/moto-server.js";
export type { EdgeRequestSigningInput } from "./edge-request-signature.js";
export {
  EDGE_AUTH_HEADERS,
  edgeRequestBodySha256,
  edgeRequestSigningText,
  signEdgeRequest,
  verifyEdgeRequestSignature,
} from "./edge-request-signature.js";
export { eventIdTimeMs, newEventId } from "./event-id.js";
export type {
  CredentialKey,
  GatewayCredential,
  GatewayCredentialClaims,
  IssueGatewayCredentialOptions,
} from "./gateway-credential.js";
export { generateCredentialKey, issueGatewayCredential, openSessionToken } from "./gateway-credential.js";
export type { Logger } from "./logger.js";
export { silentLogger } from "./logger.js";
export {
  EDGE_GLIBC_TUNABLES,
  EDGE_MALLOC_TUNABLES,
  missingEdgeMallocTunables,
  withEdgeMallocTunables,
} from "./malloc-tunables.js";
export type { OcsfApiActivity } from "./ocsf-api-activity.js";
export { OCSF_VERSION, ocsfActivity, renderOcsfApiActivity } from "./ocsf-api-activity.js";
export type { TollgateErrorCode } from "./tollgate-error.js";
export { TollgateError } from "./tollgate-error.js";
export {
  formatTraceparent,
  parseTraceparent,
  randomSpanId,
  randomTraceId,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from "./trace-context.js";
export type { WorkloadRoleArn } from "./workload-role-arn.js";
export {
  assumedRoleArn,
  PLACEHOLDER_ACCOUNT_ID,
  parseWorkloadRoleArn,
  workloadRoleArn,
} from "./workload-role-arn.js";
