import type { ServiceImpl } from "@connectrpc/connect";
import type { EdgeService } from "@tollgate/proto";
import type { CredentialKey } from "@tollgate/sdk";
import type { ConnectionRegistry } from "./connection-registry.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";

/** What edges are told about the audit stream. */
export interface EdgeAuditSettings {
  stream: string;
  subjectPrefix: string;
}

/** EdgeService: the edge's whole configuration, including upstream secrets and credential keys. */
export function createEdgeServiceImpl(
  registry: ConnectionRegistry,
  credentialKeys: readonly CredentialKey[],
  audit: EdgeAuditSettings,
  logger: Logger,
): ServiceImpl<typeof EdgeService> {
  return {
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
