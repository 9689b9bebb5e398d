import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type EdgeService, UpstreamCredentialSource } from "@tollgate/proto";
import type { CredentialKey } from "@tollgate/sdk";
import type { ConnectionRegistry } from "./connection-registry.js";
import type { CredentialRevocations } from "./credential-revocations.js";
import { edgeIdentityKey } from "./edge-auth.js";
import { EdgeKeyError, type EdgeKeyRegistry } from "./edge-key-registry.js";
import type { EdgeRegistry, EdgeStatus } from "./edge-registry.js";
import { toConnectError, withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";

/** What edges are told about the audit stream. */
export interface EdgeAuditSettings {
  stream: string;
  subjectPrefix: string;
}

/** An enrolled edge in the API's shape. */
export function edgeToProto(e: EdgeStatus) {
  return {
    name: e.name,
    labels: e.labels,
    keyIds: e.keyIds.length > 0 ? e.keyIds : e.revokedKeyIds,
    enrollTimeMs: BigInt(e.enrollTimeMs),
    lastHeartbeatMs: BigInt(e.lastHeartbeatMs),
    status: e.status,
    revokeTimeMs: BigInt(e.revokeTimeMs),
  };
}

/** What {@link createEdgeServiceImpl} serves from. */
export interface EdgeServiceDeps {
  registry: ConnectionRegistry;
  credentialKeys: readonly CredentialKey[];
  audit: EdgeAuditSettings;
  edgeKeys: EdgeKeyRegistry;
  edges: EdgeRegistry;
  revocations: CredentialRevocations;
  logger: Logger;
}

/**
 * EdgeService: the edge's whole configuration, including upstream secrets, credential keys and
 * the revocations in force, the registry of edges' checkpoint signing keys, and enrolled edges.
 */
export function createEdgeServiceImpl(deps: EdgeServiceDeps): ServiceImpl<typeof EdgeService> {
  const { registry, credentialKeys, audit, edgeKeys, edges, revocations, logger } = deps;
  return {
    async registerEdgeKey(req, ctx) {
      // Checkpoint keys say whose chain a signature vouches for: an enrolled edge registers keys
      // for itself only, and the legacy shared edge token never for an enrolled edge's name.
      const identity = ctx.values.get(edgeIdentityKey);
      if (identity !== undefined && req.edgeName !== identity.edgeName) {
        throw new ConnectError(`edge ${identity.edgeName} may register keys only for itself`, Code.PermissionDenied);
      }
      if (identity === undefined && (await withInfra("redis", () => edges.get(req.edgeName), logger)) !== undefined) {
        throw new ConnectError(
          `edge ${req.edgeName} is enrolled: only its own signed requests may register its keys`,
          Code.PermissionDenied,
        );
      }
      try {
        const record = await edgeKeys.register(req.edgeName, req.publicKeyPem);
        logger.info(
          { event: "edge_key_registered", edge: record.edgeName, keyId: record.keyId },
          "edge key registered",
        );
        return { keyId: record.keyId };
      } catch (err) {
        if (err instanceof EdgeKeyError) throw new ConnectError(err.message, Code.InvalidArgument);
        throw toConnectError(err, "redis", logger);
      }
    },

    async listEdges() {
      const [keys, enrolled] = await withInfra("redis", () => Promise.all([edgeKeys.list(), edges.list()]), logger);
      return {
        edges: enrolled.map(edgeToProto),
        keys: keys.map((k) => ({
          edgeName: k.edgeName,
          keyId: k.keyId,
          publicKeyPem: k.publicKeyPem,
          registerTimeMs: BigInt(k.registerTimeMs),
        })),
      };
    },

    async getEdgeConfig(req, ctx) {
      const identity = ctx.values.get(edgeIdentityKey);
      const [{ connections, revision }, revoked] = await withInfra(
        "redis",
        () =>
          Promise.all([
            registry.listWithSecrets(),
            revocations.list(),
            // A signed poll from an enrolled edge is its heartbeat.
            identity === undefined ? undefined : edges.heartbeat(identity.edgeName),
          ]),
        logger,
      );
      const edgeName = identity?.edgeName ?? req.edgeName;
      logger.debug({ event: "edge_config_served", edge: edgeName, revision: String(revision) }, "edge config");
      return {
        connections: connections.map((c) => ({
          name: c.name,
          region: c.region,
          upstreamEndpoint: c.upstreamEndpoint,
          upstreamAccessKeyId: c.upstreamAccessKeyId,
          upstreamSecretAccessKey: c.upstreamSecretAccessKey,
          upstreamSessionToken: c.upstreamSessionToken,
          accountId: c.accountId,
          credentialSource:
            c.credentialSource === "edge" ? UpstreamCredentialSource.EDGE : UpstreamCredentialSource.STATIC,
          roleArn: c.roleArn,
          externalId: c.externalId,
        })),
        revocations: revoked.map((r) => ({
          credentialId: r.credentialId ?? "",
          principal: r.principal ?? "",
          revokeTimeMs: BigInt(r.revokeTimeMs),
          untilMs: BigInt(r.untilMs),
        })),
        credentialKeys: credentialKeys.map((k) => ({ keyId: k.keyId, key: k.key })),
        audit: { stream: audit.stream, subjectPrefix: audit.subjectPrefix },
        revision,
      };
    },
  };
}
