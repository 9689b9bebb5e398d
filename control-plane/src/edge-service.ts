import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { EdgeService } from "@tollgate/proto";
import type { CredentialKey } from "@tollgate/sdk";
import type { ConnectionRegistry } from "./connection-registry.js";
import { EdgeKeyError, type EdgeKeyRegistry } from "./edge-key-registry.js";
import { toConnectError, withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";

/** What edges are told about the audit stream. */
export interface EdgeAuditSettings {
  stream: string;
  subjectPrefix: string;
}

/**
 * EdgeService: the edge's whole configuration, including upstream secrets and credential keys,
 * and the registry of edges' checkpoint signing keys.
 */
export function createEdgeServiceImpl(
  registry: ConnectionRegistry,
  credentialKeys: readonly CredentialKey[],
  audit: EdgeAuditSettings,
  edgeKeys: EdgeKeyRegistry,
  logger: Logger,
): ServiceImpl<typeof EdgeService> {
  return {
    async registerEdgeKey(req) {
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
      const keys = await withInfra("redis", () => edgeKeys.list(), logger);
      return {
        keys: keys.map((k) => ({
          edgeName: k.edgeName,
          keyId: k.keyId,
          publicKeyPem: k.publicKeyPem,
          registerTimeMs: BigInt(k.registerTimeMs),
        })),
      };
    },

    async getEdgeConfig(req) {
      const { connections, revision } = await withInfra("redis", () => registry.listWithSecrets(), logger);
      logger.debug({ event: "edge_config_served", edge: req.edgeName, revision: String(revision) }, "edge config");
      return {
        connections: connections.map((c) => ({
          name: c.name,
          region: c.region,
          upstreamEndpoint: c.upstreamEndpoint,
          upstreamAccessKeyId: c.upstreamAccessKeyId,
          upstreamSecretAccessKey: c.upstreamSecretAccessKey,
          upstreamSessionToken: c.upstreamSessionToken,
          accountId: c.accountId,
        })),
        credentialKeys: credentialKeys.map((k) => ({ keyId: k.keyId, key: k.key })),
        audit: { stream: audit.stream, subjectPrefix: audit.subjectPrefix },
        revision,
      };
    },
  };
}
