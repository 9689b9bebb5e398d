import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { CredentialService } from "@tollgate/proto";
import type { ConnectionRegistry } from "./connection-registry.js";
import { requireConnectionName } from "./connection-service.js";
import {
  type CredentialIssuer,
  DEFAULT_CREDENTIAL_TTL_SEC,
  MAX_CREDENTIAL_TTL_SEC,
  MIN_CREDENTIAL_TTL_SEC,
  PRINCIPAL_PATTERN,
} from "./credential-issuer.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";

/** Connection a credential is scoped to when the request names none. */
export const DEFAULT_CONNECTION = "default";

/** CredentialService: issues short-lived gateway credentials. */
export function createCredentialServiceImpl(
  registry: ConnectionRegistry,
  issuer: CredentialIssuer,
  logger: Logger,
): ServiceImpl<typeof CredentialService> {
  return {
    async issueCredential(req) {
      if (!PRINCIPAL_PATTERN.test(req.principal)) {
        throw new ConnectError(`principal must match ${PRINCIPAL_PATTERN.source}`, Code.InvalidArgument);
      }
      const connection = req.connection === "" ? DEFAULT_CONNECTION : req.connection;
      requireConnectionName(connection, "connection");
      const ttlSec = req.ttlSeconds === 0n ? DEFAULT_CREDENTIAL_TTL_SEC : Number(req.ttlSeconds);
      if (ttlSec < MIN_CREDENTIAL_TTL_SEC || ttlSec > MAX_CREDENTIAL_TTL_SEC) {
        throw new ConnectError(
          `ttl_seconds must be between ${MIN_CREDENTIAL_TTL_SEC} and ${MAX_CREDENTIAL_TTL_SEC}`,
          Code.InvalidArgument,
        );
      }
      if (!(await withInfra("redis", () => registry.exists(connection), logger))) {
        throw new ConnectError(`connection ${connection} not found`, Code.NotFound);
      }
      const cred = await withInfra("redis", () => issuer.issue(req.principal, connection, ttlSec), logger);
      logger.info(
        {
          event: "credential_issued",
          credentialId: cred.credentialId,
          accessKeyId: cred.accessKeyId,
          principal: cred.principal,
          connection: cred.connection,
          ttlSec,
        },
        "gateway credential issued",
      );
      return {
        accessKeyId: cred.accessKeyId,
        secretAccessKey: cred.secretAccessKey,
        sessionToken: cred.sessionToken,
        expireTime: timestampFromMs(cred.expiresAtSec * 1000),
        credentialId: cred.credentialId,
        principal: cred.principal,
        connection: cred.connection,
      };
    },
  };
}
