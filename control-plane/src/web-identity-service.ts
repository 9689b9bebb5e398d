import type { ServiceImpl } from "@connectrpc/connect";
import type { WebIdentityService } from "@tollgate/proto";
import { credentialResponse } from "./credential-issuer.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";
import type { WebIdentityExchange } from "./web-identity-exchange.js";

/**
 * WebIdentityService: edges exchange the web identity tokens of STS `AssumeRoleWithWebIdentity`
 * calls. The token is never logged; the edge records the call's audit event.
 */
export function createWebIdentityServiceImpl(
  exchange: WebIdentityExchange,
  logger: Logger,
): ServiceImpl<typeof WebIdentityService> {
  return {
    async exchangeWebIdentity(req) {
      const outcome = await withInfra(
        "redis",
        () =>
          exchange.exchange({
            roleArn: req.roleArn,
            roleSessionName: req.roleSessionName,
            webIdentityToken: req.webIdentityToken,
            durationSec: Number(req.durationSeconds),
          }),
        logger,
      );
      if (!outcome.ok) {
        logger.info(
          {
            event: "web_identity_refused",
            edge: req.edgeName,
            connection: outcome.connection,
            claimedSubject: outcome.subject,
            issuer: outcome.provider,
            rule: outcome.rule,
            errorCode: outcome.code,
            reason: outcome.message,
          },
          "web identity token refused",
        );
        return {
          errorCode: outcome.code,
          errorMessage: outcome.message,
          subject: outcome.subject,
          connection: outcome.connection,
          provider: outcome.provider,
        };
      }
      const cred = outcome.credential;
      logger.info(
        {
          event: "web_identity_exchanged",
          edge: req.edgeName,
          connection: outcome.connection,
          subject: outcome.subject,
          principal: outcome.principal,
          rule: outcome.rule,
          credentialId: cred.credentialId,
          accessKeyId: cred.accessKeyId,
          ttlSec: outcome.ttlSec,
        },
        "web identity token exchanged for a gateway credential",
      );
      return {
        subject: outcome.subject,
        principal: outcome.principal,
        connection: outcome.connection,
        provider: outcome.provider,
        audience: outcome.audience,
        groups: outcome.groups,
        rule: outcome.rule,
        accountId: outcome.accountId,
        credential: credentialResponse(cred),
      };
    },
  };
}
