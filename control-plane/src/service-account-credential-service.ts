import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { ServiceAccountCredentialService } from "@tollgate/proto";
import type { ConnectionRegistry } from "./connection-registry.js";
import type { ControlPlaneAudit, ControlPlaneCall } from "./control-plane-audit.js";
import { type CredentialIssuer, credentialResponse, MIN_CREDENTIAL_TTL_SEC } from "./credential-issuer.js";
import type { CredentialRevocations } from "./credential-revocations.js";
import { toConnectError, withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";
import type { ServiceAccountStore } from "./service-account-store.js";

/** eventName of the audit events of API key exchanges. */
export const SERVICE_ACCOUNT_EVENT_NAME = "IssueServiceAccountCredential";

/** What the service needs. */
export interface ServiceAccountCredentialServiceDeps {
  accounts: ServiceAccountStore;
  registry: ConnectionRegistry;
  issuer: CredentialIssuer;
  /** A revoked principal gets no credential. */
  revocations: CredentialRevocations;
  audit: ControlPlaneAudit;
  logger: Logger;
}

function bearer(header: string | null): string | undefined {
  if (header === null) return undefined;
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
}

/**
 * ServiceAccountCredentialService: a service account's API key (the bearer token of this call,
 * and good for nothing else) is exchanged for a gateway credential of that account. Every
 * exchange, refused or not, is published as one audit event; if it cannot be, no credential is
 * handed out (fail closed).
 */
export function createServiceAccountCredentialServiceImpl(
  d: ServiceAccountCredentialServiceDeps,
): ServiceImpl<typeof ServiceAccountCredentialService> {
  const { logger } = d;
  const audit = async (call: ControlPlaneCall): Promise<void> => {
    try {
      await d.audit.record(call);
    } catch (err) {
      throw toConnectError(err, "nats", logger);
    }
  };
  return {
    async issueServiceAccountCredential(req, ctx) {
      const base = {
        eventName: SERVICE_ACCOUNT_EVENT_NAME,
        identityType: "TollgateServiceAccount",
        authMethod: "api-key",
        sourceIp: "",
        userAgent: ctx.requestHeader.get("user-agent") ?? "",
        requestParameters: (req.ttlSeconds !== 0n ? { ttlSeconds: Number(req.ttlSeconds) } : {}) as Record<
          string,
          number
        >,
      };
      const apiKey = bearer(ctx.requestHeader.get("authorization"));
      if (apiKey === undefined) throw new ConnectError("missing bearer token", Code.Unauthenticated);
      const auth = await withInfra("redis", () => d.accounts.authenticate(apiKey), logger);
      if (!auth.ok) {
        // Claimed identity: the key id (public part) when the key is shaped like one.
        await audit({
          ...base,
          principal: auth.keyId,
          accessKeyId: auth.keyId,
          connection: "",
          allowed: false,
          reason: `api-key-${auth.reason}`,
          errorCode: "InvalidClientTokenId",
          errorMessage: "The API key is not valid.",
        });
        logger.info({ event: "api_key_refused", keyId: auth.keyId, reason: auth.reason }, "API key refused");
        throw new ConnectError("invalid API key", Code.Unauthenticated);
      }
      const account = auth.account;
      const who = { ...base, principal: account.principal, accessKeyId: account.keyId, connection: account.connection };
      const requested = Number(req.ttlSeconds);
      if (requested !== 0 && (requested < MIN_CREDENTIAL_TTL_SEC || requested > account.credentialTtlSec)) {
        await audit({
          ...who,
          allowed: false,
          reason: "bad-ttl",
          errorCode: "ValidationError",
          errorMessage: "ttl_seconds out of range",
        });
        throw new ConnectError(
          `ttl_seconds must be between ${MIN_CREDENTIAL_TTL_SEC} and ${account.credentialTtlSec}`,
          Code.InvalidArgument,
        );
      }
      if (!(await withInfra("redis", () => d.registry.exists(account.connection), logger))) {
        await audit({
          ...who,
          allowed: false,
          reason: "unknown-connection",
          errorCode: "AccessDenied",
          errorMessage: "The service account's connection no longer exists.",
        });
        throw new ConnectError(`connection ${account.connection} not found`, Code.FailedPrecondition);
      }
      if ((await withInfra("redis", () => d.revocations.principal(account.principal), logger)) !== undefined) {
        await audit({
          ...who,
          allowed: false,
          reason: "principal-revoked",
          errorCode: "AccessDenied",
          errorMessage: "The service account's principal is revoked.",
        });
        throw new ConnectError(`principal ${account.principal} is revoked`, Code.PermissionDenied);
      }
      const ttlSec = requested === 0 ? account.credentialTtlSec : requested;
      const cred = await withInfra(
        "redis",
        () => d.issuer.issue(account.principal, account.connection, ttlSec),
        logger,
      );
      await audit({
        ...who,
        allowed: true,
        reason: "api-key-exchanged",
        credentialId: cred.credentialId,
        responseElements: {
          accessKeyId: cred.accessKeyId,
          expiration: new Date(cred.expiresAtSec * 1000).toISOString(),
          serviceAccount: account.name,
        },
      });
      logger.info(
        {
          event: "service_account_credential_issued",
          serviceAccount: account.name,
          principal: account.principal,
          connection: account.connection,
          credentialId: cred.credentialId,
          accessKeyId: cred.accessKeyId,
          ttlSec,
        },
        "gateway credential issued for a service account",
      );
      return {
        serviceAccount: account.name,
        credential: credentialResponse(cred),
      };
    },
  };
}
