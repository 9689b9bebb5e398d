/**
 * @tollgate/edge-agent: the data path of one AWS call, in order:
 * sigv4-verifier → aws-classifier → access-policy → audit-recorder (journal, before forwarding) →
 * forward (edge-server, upstream-signer, signed-chunk-resigner) → audit-recorder completion → audit-shipper.
 */

export type { AccessDecision, AccessRequest } from "./access-policy.js";
export { decideAccess } from "./access-policy.js";
export type { AuditAppender, AuditCallRecorderOptions, AuditRecorderOptions, CallHandle } from "./audit-recorder.js";
export { AuditCallRecorder, AuditRecorder, AuditUnavailableError } from "./audit-recorder.js";
export type { EdgeConfigSnapshot, EdgeConfigSourceOptions, EdgeConnectionConfig } from "./edge-config.js";
export { EdgeConfigSource } from "./edge-config.js";
export type { EdgeServerOptions } from "./edge-server.js";
export { createEdgeRequestHandler, createEdgeServer, handleExpectContinue } from "./edge-server.js";
export type { Logger } from "./logger.js";
export type { ProxyServerOptions } from "./proxy-server.js";
export { createProxyServer, DEFAULT_PROXY_ALLOWED_HOSTS, proxyHostAllowed } from "./proxy-server.js";
export type { IssuedCertificate, TollgateCaErrorCode, TollgateCaOptions } from "./tollgate-ca.js";
export { TollgateCa, TollgateCaError } from "./tollgate-ca.js";
