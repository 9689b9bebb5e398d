/**
 * @tollgate/control-plane: connection registry, gateway credential issuance, edge
 * configuration and the audit index/query API, on one gRPC + Connect port.
 */
export type { ApiServerAddress, DualHandler } from "./api-server.js";
export { ApiServer } from "./api-server.js";
export type { AuditCursor, AuditQuery, ChainHead, IndexableEvent, IndexedEvent, StoredAlert } from "./audit-index.js";
export { AuditIndex, indexableEvent } from "./audit-index.js";
export type { AuditIngestOptions } from "./audit-ingest.js";
export { AuditIngest } from "./audit-ingest.js";
export type { AuditIntegrityOptions } from "./audit-integrity.js";
export { AuditIntegrity } from "./audit-integrity.js";
export { DEFAULT_AUDIT_PAGE_SIZE, decodePageToken, encodePageToken, MAX_AUDIT_PAGE_SIZE } from "./audit-service.js";
export type { AuditStreamOptions } from "./audit-stream.js";
export { ensureAuditStream } from "./audit-stream.js";
export type { ConnectionInfo, ConnectionInput, ConnectionWithSecrets } from "./connection-registry.js";
export { CONNECTION_NAME_PATTERN, ConnectionRegistry, DEFAULT_REGION } from "./connection-registry.js";
export { ControlPlane, redactUrl } from "./control-plane.js";
export type { ControlPlaneOptions, ResolvedControlPlaneOptions } from "./control-plane-options.js";
export { resolveControlPlaneOptions } from "./control-plane-options.js";
export type { IssuedCredentialRecord } from "./credential-issuer.js";
export {
  DEFAULT_CREDENTIAL_TTL_SEC,
  MAX_CREDENTIAL_TTL_SEC,
  MIN_CREDENTIAL_TTL_SEC,
  PRINCIPAL_PATTERN,
} from "./credential-issuer.js";
export type { RevocationRecord } from "./credential-revocations.js";
export { CredentialRevocations } from "./credential-revocations.js";
export type { EdgeAuthOptions } from "./edge-auth.js";
export { createEdgeAuthInterceptor, EDGE_SIGNED_PROCEDURES, edgeIdentityKey } from "./edge-auth.js";
export type { EdgeKeyRecord } from "./edge-key-registry.js";
export { EDGE_NAME_PATTERN, EdgeKeyError, EdgeKeyRegistry } from "./edge-key-registry.js";
export type { EdgeRecord, EdgeStatus } from "./edge-registry.js";
export {
  DEFAULT_EDGE_STALE_AFTER_MS,
  DEFAULT_ENROLLMENT_TTL_SEC,
  EdgeEnrollmentError,
  EdgeRegistry,
  MAX_ENROLLMENT_TTL_SEC,
  MIN_ENROLLMENT_TTL_SEC,
} from "./edge-registry.js";
export type { InfraComponent } from "./infra-error.js";
export { toConnectError } from "./infra-error.js";
export type { Logger } from "./logger.js";
export { silentLogger } from "./logger.js";
export type { ControlPlaneState, LoadedState } from "./state-store.js";
export { hashToken, loadOrCreateState, readTokenFile, statePaths } from "./state-store.js";
export type { CallerRole, TokenHashes } from "./token-auth.js";
export { callerKey, createTokenAuthInterceptor } from "./token-auth.js";
