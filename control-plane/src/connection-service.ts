import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type ConnectionSchema, type ConnectionService, UpstreamCredentialSource } from "@tollgate/proto";
import { CONNECTION_NAME_PATTERN, type ConnectionInfo, type ConnectionRegistry } from "./connection-registry.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";

/** Throws `InvalidArgument` unless `name` is a valid connection name. */
export function requireConnectionName(name: string, field = "name"): void {
  if (!CONNECTION_NAME_PATTERN.test(name)) {
    throw new ConnectError(`${field} must match ${CONNECTION_NAME_PATTERN.source}`, Code.InvalidArgument);
  }
}

function toProto(c: ConnectionInfo): MessageInitShape<typeof ConnectionSchema> {
  return {
    name: c.name,
    region: c.region,
    upstreamEndpoint: c.upstreamEndpoint,
    upstreamAccessKeyId: c.upstreamAccessKeyId,
    hasUpstreamSecret: c.hasUpstreamSecret,
    accountId: c.accountId,
    credentialSource: c.credentialSource === "edge" ? UpstreamCredentialSource.EDGE : UpstreamCredentialSource.STATIC,
    roleArn: c.roleArn,
    externalId: c.externalId,
    createTime: timestampFromMs(c.createTimeMs),
    updateTime: timestampFromMs(c.updateTimeMs),
  };
}

/** Role ARNs a connection may assume (any partition). */
export const ROLE_ARN_PATTERN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** STS ExternalId: 2-1224 characters of [\w+=,.@:/-]. */
const EXTERNAL_ID_PATTERN = /^[\w+=,.@:/-]{2,1224}$/;

/** ConnectionService: the admin API of the connection registry. Secrets are write-only. */
export function createConnectionServiceImpl(
  registry: ConnectionRegistry,
  logger: Logger,
): ServiceImpl<typeof ConnectionService> {
  return {
    async createConnection(req) {
      const c = req.connection;
      if (c === undefined) throw new ConnectError("connection is required", Code.InvalidArgument);
      requireConnectionName(c.name, "connection.name");
      if (c.upstreamEndpoint !== "" && !URL.canParse(c.upstreamEndpoint)) {
        throw new ConnectError("connection.upstream_endpoint must be a URL", Code.InvalidArgument);
      }
      if (c.roleArn !== "" && !ROLE_ARN_PATTERN.test(c.roleArn)) {
        throw new ConnectError("connection.role_arn must be an IAM role ARN", Code.InvalidArgument);
      }
      if (c.externalId !== "" && (c.roleArn === "" || !EXTERNAL_ID_PATTERN.test(c.externalId))) {
        throw new ConnectError(
          "connection.external_id needs a role_arn and must match [\\w+=,.@:/-]{2,1224}",
          Code.InvalidArgument,
        );
      }
      const credentialSource = c.credentialSource === UpstreamCredentialSource.EDGE ? "edge" : "static";
      if (credentialSource === "edge" && (c.upstreamAccessKeyId !== "" || req.upstreamSecretAccessKey !== "")) {
        throw new ConnectError(
          "credential_source EDGE uses the edge's own AWS credentials; give no upstream keys",
          Code.InvalidArgument,
        );
      }
      const result = await withInfra(
        "redis",
        () =>
          registry.create(
            {
              name: c.name,
              region: c.region,
              upstreamEndpoint: c.upstreamEndpoint,
              upstreamAccessKeyId: c.upstreamAccessKeyId,
              accountId: c.accountId,
              upstreamSecretAccessKey: req.upstreamSecretAccessKey,
              upstreamSessionToken: req.upstreamSessionToken,
              credentialSource,
              roleArn: c.roleArn,
              externalId: c.externalId,
            },
            req.allowReplace,
          ),
        logger,
      );
      if (!result.ok) {
        throw new ConnectError(`connection ${c.name} already exists`, Code.AlreadyExists);
      }
      logger.info({ event: "connection_saved", connection: c.name, replace: req.allowReplace }, "connection saved");
      return { connection: toProto(result.connection) };
    },

    async getConnection(req) {
      requireConnectionName(req.name);
      const c = await withInfra("redis", () => registry.get(req.name), logger);
      if (c === undefined) throw new ConnectError(`connection ${req.name} not found`, Code.NotFound);
      return { connection: toProto(c) };
    },

    async listConnections() {
      const all = await withInfra("redis", () => registry.list(), logger);
      return { connections: all.map(toProto) };
    },

    async deleteConnection(req) {
      requireConnectionName(req.name);
      const deleted = await withInfra("redis", () => registry.delete(req.name), logger);
      if (!deleted) throw new ConnectError(`connection ${req.name} not found`, Code.NotFound);
      logger.info({ event: "connection_deleted", connection: req.name }, "connection deleted");
      return {};
    },
  };
}
