/**
 * @tollgate/edge-agent: the data path of one AWS call, in order:
 * sigv4-verifier → aws-classifier → access-policy → upstream-forwarder (edge-server) → audit-publisher.
 */

export type { AccessDecision, AccessRequest } from "./access-policy.js";
export { decideAccess } from "./access-policy.js";
export type { AuditPublisherOptions } from "./audit-publisher.js";
export { AuditPublisher } from "./audit-publisher.js";
export type { EdgeConfigSnapshot, EdgeConfigSourceOptions, EdgeConnectionConfig } from "./edge-config.js";
export { EdgeConfigSource } from "./edge-config.js";
export type { EdgeServerOptions } from "./edge-server.js";
export { createEdgeRequestHandler, createEdgeServer } from "./edge-server.js";
export type { Logger } from "./logger.js";
