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
export { BREAK_GLASS_ALERT_SOURCE, ControlPlane, redactUrl } from "./control-plane.js";
export type { ControlPlaneOptions, OidcConfig, ResolvedControlPlaneOptions } from "./control-plane-options.js";
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
export type { IdentityServiceOptions, OidcLoginOptions } from "./identity-service.js";
export { createIdentityServiceImpl, DEFAULT_OIDC_SCOPES } from "./identity-service.js";
export type { InfraComponent } from "./infra-error.js";
export { toConnectError } from "./infra-error.js";
export type { Logger } from "./logger.js";
export { silentLogger } from "./logger.js";
export type { OidcVerifierOptions, VerifiedIdToken } from "./oidc-verifier.js";
export { ID_TOKEN_ALGORITHMS, IdTokenError, OidcVerifier } from "./oidc-verifier.js";
export type { MappedRoles, RoleRule } from "./role-mapping.js";
export { mapRoles, parseRoleMap, RoleMapError } from "./role-mapping.js";
export type { SamlConfig, SamlSsoOptions } from "./saml-sso.js";
export { SAML_ACS_PATH, SAML_LOGIN_PATH, SamlLoginError, SamlSso } from "./saml-sso.js";
export type { IssuedSession, SessionIdentity } from "./session-token.js";
export { DEFAULT_SESSION_TTL_SEC, MAX_SESSION_TTL_SEC, SessionTokens } from "./session-token.js";
export type { ControlPlaneState, LoadedState } from "./state-store.js";
export { hashToken, loadOrCreateState, readTokenFile, statePaths } from "./state-store.js";
export type { Audience, Authenticator, AuthMethod, Caller, Role, TokenAuthOptions, TokenHashes } from "./token-auth.js";
export { callerKey, createTokenAuthInterceptor, isAllowed, METHOD_ACCESS, ROLES } from "./token-auth.js";
