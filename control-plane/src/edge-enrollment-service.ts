import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { EdgeAdminService, EdgeEnrollmentService } from "@tollgate/proto";
import { EdgeKeyError } from "./edge-key-registry.js";
import {
  DEFAULT_ENROLLMENT_TTL_SEC,
  EdgeEnrollmentError,
  type EdgeRegistry,
  MAX_ENROLLMENT_TTL_SEC,
  MIN_ENROLLMENT_TTL_SEC,
} from "./edge-registry.js";
import { edgeToProto } from "./edge-service.js";
import { toConnectError } from "./infra-error.js";
import type { Logger } from "./logger.js";

const CODE_OF: Readonly<Record<EdgeEnrollmentError["code"], Code>> = {
  ERR_EDGE_NAME: Code.InvalidArgument,
  ERR_EDGE_LABEL: Code.InvalidArgument,
  ERR_ENROLLMENT_TOKEN: Code.PermissionDenied,
  ERR_EDGE_NAME_MISMATCH: Code.PermissionDenied,
  ERR_EDGE_KEY_REVOKED: Code.PermissionDenied,
  ERR_EDGE_NOT_FOUND: Code.NotFound,
};

function mapError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof EdgeEnrollmentError) return new ConnectError(err.message, CODE_OF[err.code]);
  if (err instanceof EdgeKeyError) return new ConnectError(err.message, Code.InvalidArgument);
  return toConnectError(err, "redis", logger);
}

/**
 * EdgeEnrollmentService: served without a bearer token (the one-time token in the request is
 * the credential), so it is mounted outside the token-auth interceptor.
 */
export function createEdgeEnrollmentServiceImpl(
  edges: EdgeRegistry,
  logger: Logger,
): ServiceImpl<typeof EdgeEnrollmentService> {
  return {
    async enroll(req) {
      try {
        const record = await edges.enroll(req.token, req.publicKeyPem, req.edgeName);
        const keyId = record.keyIds[record.keyIds.length - 1] ?? "";
        logger.info({ event: "edge_enrolled", edge: record.name, keyId, labels: record.labels }, "edge enrolled");
        return { edge: edgeToProto({ ...record, lastHeartbeatMs: 0, status: "stale" }), keyId };
      } catch (err) {
        logger.warn(
          { event: "edge_enroll_refused", edge: req.edgeName, why: err instanceof Error ? err.message : String(err) },
          "edge enrollment refused",
        );
        throw mapError(err, logger);
      }
    },
  };
}

/** EdgeAdminService: enrollment tokens and edge revocation (admin). */
export function createEdgeAdminServiceImpl(edges: EdgeRegistry, logger: Logger): ServiceImpl<typeof EdgeAdminService> {
  return {
    async createEnrollmentToken(req) {
      const ttlSec = req.ttlSeconds === 0n ? DEFAULT_ENROLLMENT_TTL_SEC : Number(req.ttlSeconds);
      if (ttlSec < MIN_ENROLLMENT_TTL_SEC || ttlSec > MAX_ENROLLMENT_TTL_SEC) {
        throw new ConnectError(
          `ttl_seconds must be between ${MIN_ENROLLMENT_TTL_SEC} and ${MAX_ENROLLMENT_TTL_SEC}`,
          Code.InvalidArgument,
        );
      }
      try {
        const t = await edges.createEnrollmentToken(req.edgeName, req.labels, ttlSec);
        logger.info(
          { event: "edge_enrollment_token_created", edge: t.edgeName, expireTimeMs: t.expireTimeMs },
          "edge enrollment token created",
        );
        return { token: t.token, edgeName: t.edgeName, expireTimeMs: BigInt(t.expireTimeMs) };
      } catch (err) {
        throw mapError(err, logger);
      }
    },

    async revokeEdge(req) {
      try {
        const edge = await edges.revoke(req.edgeName);
        logger.info({ event: "edge_revoked", edge: edge.name }, "edge revoked");
        return { edge: edgeToProto(edge) };
      } catch (err) {
        throw mapError(err, logger);
      }
    },
  };
}
