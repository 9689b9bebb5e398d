/**
 * @tollgate/proto: generated message and service definitions.
 * Generated code lives in src/gen (buf generate); this file only re-exports it.
 */

export type {
  AuditEvent,
  Checkpoint,
  PayloadDigest,
  Resource,
  TlsDetails,
  TollgateContext,
  UserIdentity,
} from "./gen/tollgate/audit/v1/audit_event_pb.js";
export {
  AuditEventSchema,
  CheckpointSchema,
  Decision,
  DecisionSchema,
  file_tollgate_audit_v1_audit_event,
  PayloadDigestSchema,
  ResourceSchema,
  TlsDetailsSchema,
  TollgateContextSchema,
  UserIdentitySchema,
} from "./gen/tollgate/audit/v1/audit_event_pb.js";
export type {
  AuditFilter,
  IntegrityAlert,
  ListAlertsRequest,
  ListAlertsResponse,
  QueryEventsRequest,
  QueryEventsResponse,
  TailEventsRequest,
  TailEventsResponse,
} from "./gen/tollgate/audit/v1/audit_service_pb.js";
export {
  AuditFilterSchema,
  AuditService,
  file_tollgate_audit_v1_audit_service,
  IntegrityAlertSchema,
  ListAlertsRequestSchema,
  ListAlertsResponseSchema,
  QueryEventsRequestSchema,
  QueryEventsResponseSchema,
  TailEventsRequestSchema,
  TailEventsResponseSchema,
} from "./gen/tollgate/audit/v1/audit_service_pb.js";
export type {
  Connection,
  CreateConnectionRequest,
  CreateConnectionResponse,
  DeleteConnectionRequest,
  DeleteConnectionResponse,
  GetConnectionRequest,
  GetConnectionResponse,
  ListConnectionsRequest,
  ListConnectionsResponse,
} from "./gen/tollgate/connection/v1/connection_service_pb.js";
export {
  ConnectionSchema,
  ConnectionService,
  CreateConnectionRequestSchema,
  CreateConnectionResponseSchema,
  DeleteConnectionRequestSchema,
  DeleteConnectionResponseSchema,
  file_tollgate_connection_v1_connection_service,
  GetConnectionRequestSchema,
  GetConnectionResponseSchema,
  ListConnectionsRequestSchema,
  ListConnectionsResponseSchema,
} from "./gen/tollgate/connection/v1/connection_service_pb.js";
export type {
  IssueCredentialRequest,
  IssueCredentialResponse,
} from "./gen/tollgate/credential/v1/credential_service_pb.js";
export {
  CredentialService,
  file_tollgate_credential_v1_credential_service,
  IssueCredentialRequestSchema,
  IssueCredentialResponseSchema,
} from "./gen/tollgate/credential/v1/credential_service_pb.js";
export type {
  AuditSettings,
  CredentialKey,
  EdgeConnection,
  EdgeKey,
  GetEdgeConfigRequest,
  GetEdgeConfigResponse,
  ListEdgesRequest,
  ListEdgesResponse,
  RegisterEdgeKeyRequest,
  RegisterEdgeKeyResponse,
} from "./gen/tollgate/edge/v1/edge_service_pb.js";
export {
  AuditSettingsSchema,
  CredentialKeySchema,
  EdgeConnectionSchema,
  EdgeKeySchema,
  EdgeService,
  file_tollgate_edge_v1_edge_service,
  GetEdgeConfigRequestSchema,
  GetEdgeConfigResponseSchema,
  ListEdgesRequestSchema,
  ListEdgesResponseSchema,
  RegisterEdgeKeyRequestSchema,
  RegisterEdgeKeyResponseSchema,
} from "./gen/tollgate/edge/v1/edge_service_pb.js";
