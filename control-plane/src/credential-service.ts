import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { CredentialInfoSchema, CredentialService, RevocationInfoSchema } from "@tollgate/proto";
import type { ConnectionRegistry } from "./connection-registry.js";
import { requireConnectionName } from "./connection-service.js";
import {
  type CredentialIssuer,
  credentialResponse,
  DEFAULT_CREDENTIAL_TTL_SEC,
  type IssuedCredentialRecord,
  MAX_CREDENTIAL_TTL_SEC,
  MIN_CREDENTIAL_TTL_SEC,
  PRINCIPAL_PATTERN,
} from "./credential-issuer.js";
import type { CredentialRevocations, RevocationRecord } from "./credential-revocations.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";
import { callerKey } from "./token-auth.js";

/** Connection a credential is scoped to when the request names none. */
export const DEFAULT_CONNECTION = "default";

/** Longest principal revocation: a year. */
const MAX_PRINCIPAL_REVOCATION_MS = 366 * 24 * 3600 * 1000;

function revocationInfo(r: RevocationRecord): MessageInitShape<typeof RevocationInfoSchema> {
  return {
    credentialId: r.credentialId ?? "",
    principal: r.principal ?? "",
    revokeTime: timestampFromMs(r.revokeTimeMs),
    until: timestampFromMs(r.untilMs),
  };
}

function credentialInfo(c: IssuedCredentialRecord, revoked: boolean): MessageInitShape<typeof CredentialInfoSchema> {
  return {
    credentialId: c.credentialId,
    accessKeyId: c.accessKeyId,
    principal: c.principal,
    connection: c.connection,
    issueTime: timestampFromMs(c.issuedAtSec * 1000),
    expireTime: timestampFromMs(c.expiresAtSec * 1000),
    revoked,
  };
}

/** CredentialService: issues, lists and revokes short-lived gateway credentials. */
export function createCredentialServiceImpl(
  registry: ConnectionRegistry,
  issuer: CredentialIssuer,
  revocations: CredentialRevocations,
  logger: Logger,
): ServiceImpl<typeof CredentialService> {
  const revokedSets = async (): Promise<{ credentials: Set<string>; principals: Set<string> }> => {
    const all = await revocations.list();
    return {
      credentials: new Set(all.flatMap((r) => (r.credentialId === undefined ? [] : [r.credentialId]))),
      principals: new Set(all.flatMap((r) => (r.principal === undefined ? [] : [r.principal]))),
    };
  };
  return {
    async issueCredential(req, ctx) {
      const caller = ctx.values.get(callerKey);
      const connection = req.connection === "" ? DEFAULT_CONNECTION : req.connection;
      let principal = req.principal;
      if (caller === undefined) throw new ConnectError("not authenticated", Code.Unauthenticated);
      if (!caller.roles.includes("admin")) {
        // An agent gets credentials for itself only, on the connections it was granted.
        if (principal !== "" && principal !== caller.principal) {
          throw new ConnectError("an agent may only issue credentials for itself", Code.PermissionDenied);
        }
        principal = caller.principal;
        const allowed = caller.connections ?? [];
        if (!allowed.includes("*") && !allowed.includes(connection)) {
          throw new ConnectError(`${caller.principal} may not use connection ${connection}`, Code.PermissionDenied);
        }
      }
      if (!PRINCIPAL_PATTERN.test(principal)) {
        throw new ConnectError(`principal must match ${PRINCIPAL_PATTERN.source}`, Code.InvalidArgument);
      }
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
      const revoked = await withInfra("redis", () => revocations.principal(principal), logger);
      if (revoked !== undefined) {
        throw new ConnectError(
          `principal ${principal} is revoked until ${new Date(revoked.untilMs).toISOString()}`,
          Code.PermissionDenied,
        );
      }
      const cred = await withInfra("redis", () => issuer.issue(principal, connection, ttlSec), logger);
      logger.info(
        {
          event: "credential_issued",
          credentialId: cred.credentialId,
          accessKeyId: cred.accessKeyId,
          principal: cred.principal,
          connection: cred.connection,
          ttlSec,
          issuedBy: caller.principal,
        },
        "gateway credential issued",
      );
      return credentialResponse(cred);
    },

    async listCredentials(req) {
      const [creds, revoked] = await withInfra(
        "redis",
        () => Promise.all([issuer.list(req.principal), revokedSets()]),
        logger,
      );
      return {
        credentials: creds.map((c) =>
          credentialInfo(c, revoked.credentials.has(c.credentialId) || revoked.principals.has(c.principal)),
        ),
      };
    },

    async revokeCredential(req) {
      if ((req.credentialId === "") === (req.accessKeyId === "")) {
        throw new ConnectError("give exactly one of credential_id, access_key_id", Code.InvalidArgument);
      }
      const by = req.credentialId !== "" ? { credentialId: req.credentialId } : { accessKeyId: req.accessKeyId };
      const cred = await withInfra("redis", () => issuer.find(by), logger);
      if (cred === undefined) {
        throw new ConnectError("credential not found (unknown or already expired)", Code.NotFound);
      }
      await withInfra("redis", () => revocations.revokeCredential(cred.credentialId, cred.expiresAtSec * 1000), logger);
      logger.info(
        {
          event: "credential_revoked",
          credentialId: cred.credentialId,
          accessKeyId: cred.accessKeyId,
          principal: cred.principal,
        },
        "gateway credential revoked",
      );
      return { credential: credentialInfo(cred, true) };
    },

    async revokePrincipal(req) {
      if (!PRINCIPAL_PATTERN.test(req.principal)) {
        throw new ConnectError(`principal must match ${PRINCIPAL_PATTERN.source}`, Code.InvalidArgument);
      }
      const now = Date.now();
      const untilMs =
        req.until === undefined ? now + MAX_CREDENTIAL_TTL_SEC * 1000 : timestampDate(req.until).getTime();
      if (untilMs <= now || untilMs > now + MAX_PRINCIPAL_REVOCATION_MS) {
        throw new ConnectError("until must be in the future and within a year", Code.InvalidArgument);
      }
      const rec = await withInfra("redis", () => revocations.revokePrincipal(req.principal, untilMs, now), logger);
      logger.info({ event: "principal_revoked", principal: req.principal, untilMs: rec.untilMs }, "principal revoked");
      return { revocation: revocationInfo(rec) };
    },

    async listRevocations() {
      const all = await withInfra("redis", () => revocations.list(), logger);
      return { revocations: all.map(revocationInfo) };
    },
  };
}
