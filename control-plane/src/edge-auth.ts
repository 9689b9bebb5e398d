import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { EdgeService, WebIdentityService } from "@tollgate/proto";
import {
  EDGE_AUTH_HEADERS,
  edgeRequestBodySha256,
  edgeRequestSigningText,
  verifyEdgeRequestSignature,
} from "@tollgate/sdk";
import type { EdgeKeyRegistry } from "./edge-key-registry.js";
import type { EdgeRegistry } from "./edge-registry.js";
import { toConnectError } from "./infra-error.js";
import type { Logger } from "./logger.js";
import { callerKey } from "./token-auth.js";

/** The enrolled edge a signed request came from; handlers read it with `ctx.values.get(edgeIdentityKey)`. */
export const edgeIdentityKey = createContextKey<{ edgeName: string; keyId: string } | undefined>(undefined, {
  description: "tollgate enrolled edge",
});

/** Procedures an enrolled edge may call with a signed request. */
export const EDGE_SIGNED_PROCEDURES: ReadonlySet<string> = new Set([
  ...[EdgeService.method.getEdgeConfig, EdgeService.method.registerEdgeKey, EdgeService.method.listEdges].map(
    (m) => `/${EdgeService.typeName}/${m.name}`,
  ),
  // The edge's STS AssumeRoleWithWebIdentity intercept exchanges tokens here.
  `/${WebIdentityService.typeName}/${WebIdentityService.method.exchangeWebIdentity.name}`,
]);

/** Options of {@link createEdgeAuthInterceptor}. */
export interface EdgeAuthOptions {
  edges: EdgeRegistry;
  keys: EdgeKeyRegistry;
  logger: Logger;
  /** Accepted clock difference between edge and control plane; default 300000 ms (±5 min). */
  maxSkewMs?: number;
}

/**
 * Connect interceptor for enrolled edges' signed requests (headers {@link EDGE_AUTH_HEADERS}).
 * A request without `x-tollgate-edge` passes through untouched (bearer-token auth handles it).
 * A signed request is accepted only for {@link EDGE_SIGNED_PROCEDURES}, from an enrolled,
 * unrevoked edge with that key, with a timestamp within ±`maxSkewMs`, a valid Ed25519
 * signature over method, timestamp, nonce and SHA-256 of the request message, and a signature
 * never seen before (replay cache in Redis for twice the skew window). It then sets
 * {@link edgeIdentityKey} and an `edge` caller, which token-auth.ts authorizes (no bearer token needed).
 */
export function createEdgeAuthInterceptor(options: EdgeAuthOptions): Interceptor {
  const maxSkewMs = options.maxSkewMs ?? 300_000;
  const { edges, keys, logger } = options;
  const refuse = (why: string, edgeName: string, procedure: string): never => {
    logger.warn({ event: "edge_auth_refused", edge: edgeName, procedure, why }, "edge request refused");
    throw new ConnectError(`edge request refused: ${why}`, Code.Unauthenticated);
  };
  return (next) => async (req) => {
    const edgeName = req.header.get(EDGE_AUTH_HEADERS.edge);
    if (edgeName === null) return await next(req);
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    if (!EDGE_SIGNED_PROCEDURES.has(procedure) || req.stream) {
      throw new ConnectError(`an edge may not call ${procedure}`, Code.PermissionDenied);
    }
    const keyId = req.header.get(EDGE_AUTH_HEADERS.keyId) ?? "";
    const timestamp = req.header.get(EDGE_AUTH_HEADERS.timestamp) ?? "";
    const nonce = req.header.get(EDGE_AUTH_HEADERS.nonce) ?? "";
    const signature = req.header.get(EDGE_AUTH_HEADERS.signature) ?? "";
    if (!/^\d{1,15}$/.test(timestamp) || nonce.length < 16 || nonce.length > 64 || signature === "") {
      return refuse("malformed signature headers", edgeName, procedure);
    }
    const timestampMs = Number(timestamp);
    if (Math.abs(Date.now() - timestampMs) > maxSkewMs) {
      return refuse(`timestamp outside ±${maxSkewMs / 1000} s of the control plane's clock`, edgeName, procedure);
    }
    let publicKeyPem: string | undefined;
    try {
      const record = await edges.get(edgeName);
      if (record === undefined) return refuse("edge not enrolled", edgeName, procedure);
      if (record.revokeTimeMs !== 0 || record.revokedKeyIds.includes(keyId)) {
        throw new ConnectError(`edge ${edgeName} is revoked`, Code.PermissionDenied);
      }
      if (!record.keyIds.includes(keyId)) return refuse("key not enrolled for this edge", edgeName, procedure);
      publicKeyPem = (await keys.get(edgeName, keyId))?.publicKeyPem;
    } catch (err) {
      if (err instanceof ConnectError) {
        if (err.code === Code.PermissionDenied) {
          logger.warn({ event: "edge_auth_refused", edge: edgeName, procedure, why: "revoked" }, "edge revoked");
        }
        throw err;
      }
      throw toConnectError(err, "redis", logger);
    }
    if (publicKeyPem === undefined) return refuse("key not enrolled for this edge", edgeName, procedure);
    const text = edgeRequestSigningText({
      edgeName,
      keyId,
      procedure,
      timestampMs,
      nonce,
      bodySha256: edgeRequestBodySha256(toBinary(req.method.input, req.message)),
    });
    if (!verifyEdgeRequestSignature(publicKeyPem, text, signature)) {
      return refuse("bad signature", edgeName, procedure);
    }
    let fresh: boolean;
    try {
      fresh = await edges.reserveSignature(signature, 2 * maxSkewMs);
    } catch (err) {
      throw toConnectError(err, "redis", logger);
    }
    if (!fresh) return refuse("replayed request", edgeName, procedure);
    req.contextValues.set(edgeIdentityKey, { edgeName, keyId });
    req.contextValues.set(callerKey, {
      kind: "edge",
      principal: `edge:${edgeName}`,
      roles: [],
      authMethod: "edge-signature",
    });
    return await next(req);
  };
}
