import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { ServiceAccountSchema, TrustRule, TrustRuleSchema, WorkloadService } from "@tollgate/proto";
import { workloadRoleArn } from "@tollgate/sdk";
import { anchoredRegExp, templateClaims } from "./claim-match.js";
import type { ConnectionRegistry } from "./connection-registry.js";
import { requireConnectionName } from "./connection-service.js";
import {
  DEFAULT_CREDENTIAL_TTL_SEC,
  MAX_CREDENTIAL_TTL_SEC,
  MIN_CREDENTIAL_TTL_SEC,
  PRINCIPAL_PATTERN,
} from "./credential-issuer.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";
import type { ServiceAccountRecord, ServiceAccountStore } from "./service-account-store.js";
import {
  type ClaimConditionRecord,
  type TrustRuleRecord,
  type TrustRuleStore,
  WORKLOAD_NAME_PATTERN,
} from "./trust-rule-store.js";

/** Default principal template of a trust rule. */
export const DEFAULT_PRINCIPAL_TEMPLATE = "{sub}";

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** Issuer and JWKS URLs: https, or http on a loopback host (development and tests). */
function requireIdpUrl(value: string, field: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`${field} must be a URL`);
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw invalid(`${field} must be an https URL (http only on a loopback host)`);
  }
  if (url.username !== "" || url.password !== "") throw invalid(`${field} must not carry credentials`);
}

function requireTtl(ttlSec: number, field: string): number {
  if (ttlSec === 0) return DEFAULT_CREDENTIAL_TTL_SEC;
  if (ttlSec < MIN_CREDENTIAL_TTL_SEC || ttlSec > MAX_CREDENTIAL_TTL_SEC) {
    throw invalid(`${field} must be between ${MIN_CREDENTIAL_TTL_SEC} and ${MAX_CREDENTIAL_TTL_SEC}`);
  }
  return ttlSec;
}

/** Validates a trust rule from the API and returns it as stored. */
export function validateTrustRule(rule: TrustRule | undefined, nowMs: number): TrustRuleRecord {
  if (rule === undefined) throw invalid("rule is required");
  requireConnectionName(rule.connection, "rule.connection");
  if (!WORKLOAD_NAME_PATTERN.test(rule.name)) throw invalid(`rule.name must match ${WORKLOAD_NAME_PATTERN.source}`);
  if (rule.issuer === "") throw invalid("rule.issuer is required");
  requireIdpUrl(rule.issuer, "rule.issuer");
  if (rule.jwksUrl !== "") requireIdpUrl(rule.jwksUrl, "rule.jwks_url");
  const audiences = rule.audiences.filter((a) => a !== "");
  if (audiences.length === 0) throw invalid("rule.audiences needs at least one audience");
  const conditions: ClaimConditionRecord[] = rule.conditions.map((c, i) => {
    if (c.claim === "") throw invalid(`rule.conditions[${i}].claim is required`);
    if ((c.glob === "") === (c.regex === "")) throw invalid(`rule.conditions[${i}] needs exactly one of glob, regex`);
    if (c.regex !== "") {
      try {
        anchoredRegExp(c.regex);
      } catch {
        throw invalid(`rule.conditions[${i}].regex is not a valid regular expression`);
      }
    }
    return { claim: c.claim, glob: c.glob, regex: c.regex };
  });
  const principalTemplate = rule.principalTemplate === "" ? DEFAULT_PRINCIPAL_TEMPLATE : rule.principalTemplate;
  // The fixed text of the template must itself be principal characters.
  const fixed = principalTemplate.replace(/\{[^{}]+\}/g, "x");
  if (!PRINCIPAL_PATTERN.test(fixed) || templateClaims(principalTemplate).some((c) => c.trim() === "")) {
    throw invalid(`rule.principal_template must render to ${PRINCIPAL_PATTERN.source}`);
  }
  return {
    connection: rule.connection,
    name: rule.name,
    issuer: rule.issuer,
    jwksUrl: rule.jwksUrl,
    audiences,
    subjectPattern: rule.subjectPattern,
    conditions,
    principalTemplate,
    groupsClaim: rule.groupsClaim,
    maxTtlSec: requireTtl(Number(rule.maxTtlSeconds), "rule.max_ttl_seconds"),
    createTimeMs: nowMs,
  };
}

function ruleToProto(r: TrustRuleRecord): MessageInitShape<typeof TrustRuleSchema> {
  return {
    connection: r.connection,
    name: r.name,
    issuer: r.issuer,
    jwksUrl: r.jwksUrl,
    audiences: r.audiences,
    subjectPattern: r.subjectPattern,
    conditions: r.conditions,
    principalTemplate: r.principalTemplate,
    groupsClaim: r.groupsClaim,
    maxTtlSeconds: BigInt(r.maxTtlSec),
    createTimeMs: BigInt(r.createTimeMs),
  };
}

function accountToProto(a: ServiceAccountRecord): MessageInitShape<typeof ServiceAccountSchema> {
  return {
    name: a.name,
    connection: a.connection,
    principal: a.principal,
    keyId: a.keyId,
    credentialTtlSeconds: BigInt(a.credentialTtlSec),
    createTimeMs: BigInt(a.createTimeMs),
  };
}

/** What the WorkloadService needs. */
export interface WorkloadServiceDeps {
  registry: ConnectionRegistry;
  rules: TrustRuleStore;
  accounts: ServiceAccountStore;
  logger: Logger;
}

/** WorkloadService: trust rules and service accounts (admin). */
export function createWorkloadServiceImpl(d: WorkloadServiceDeps): ServiceImpl<typeof WorkloadService> {
  const { logger } = d;
  const requireConnection = async (name: string): Promise<string> => {
    const c = await withInfra("redis", () => d.registry.get(name), logger);
    if (c === undefined) throw new ConnectError(`connection ${name} not found`, Code.NotFound);
    return c.accountId;
  };
  return {
    async createTrustRule(req) {
      const rule = validateTrustRule(req.rule, Date.now());
      const accountId = await requireConnection(rule.connection);
      if (!(await withInfra("redis", () => d.rules.put(rule, req.replace), logger))) {
        throw new ConnectError(
          `trust rule ${rule.connection}/${rule.name} exists (use replace to overwrite it)`,
          Code.AlreadyExists,
        );
      }
      logger.info(
        { event: "trust_rule_created", connection: rule.connection, rule: rule.name, issuer: rule.issuer },
        "trust rule created",
      );
      return { rule: ruleToProto(rule), roleArn: workloadRoleArn(rule.connection, accountId) };
    },
    async listTrustRules(req) {
      if (req.connection !== "") requireConnectionName(req.connection, "connection");
      const rules = await withInfra(
        "redis",
        () => d.rules.list(req.connection === "" ? undefined : req.connection),
        logger,
      );
      return { rules: rules.map(ruleToProto) };
    },
    async deleteTrustRule(req) {
      requireConnectionName(req.connection, "connection");
      if (!WORKLOAD_NAME_PATTERN.test(req.name)) throw invalid(`name must match ${WORKLOAD_NAME_PATTERN.source}`);
      if (!(await withInfra("redis", () => d.rules.delete(req.connection, req.name), logger))) {
        throw new ConnectError(`trust rule ${req.connection}/${req.name} not found`, Code.NotFound);
      }
      logger.info({ event: "trust_rule_deleted", connection: req.connection, rule: req.name }, "trust rule deleted");
      return {};
    },
    async createServiceAccount(req) {
      if (!WORKLOAD_NAME_PATTERN.test(req.name)) throw invalid(`name must match ${WORKLOAD_NAME_PATTERN.source}`);
      requireConnectionName(req.connection, "connection");
      const principal = req.principal === "" ? `sa:${req.name}` : req.principal;
      if (!PRINCIPAL_PATTERN.test(principal)) throw invalid(`principal must match ${PRINCIPAL_PATTERN.source}`);
      const credentialTtlSec = requireTtl(Number(req.credentialTtlSeconds), "credential_ttl_seconds");
      await requireConnection(req.connection);
      const created = await withInfra(
        "redis",
        () => d.accounts.create({ name: req.name, connection: req.connection, principal, credentialTtlSec }),
        logger,
      );
      if (!created.ok) throw new ConnectError(`service account ${req.name} exists`, Code.AlreadyExists);
      logger.info(
        {
          event: "service_account_created",
          serviceAccount: req.name,
          connection: req.connection,
          principal,
          keyId: created.account.keyId,
        },
        "service account created",
      );
      return { serviceAccount: accountToProto(created.account), apiKey: created.apiKey };
    },
    async listServiceAccounts() {
      const accounts = await withInfra("redis", () => d.accounts.list(), logger);
      return { serviceAccounts: accounts.map(accountToProto) };
    },
    async deleteServiceAccount(req) {
      if (!WORKLOAD_NAME_PATTERN.test(req.name)) throw invalid(`name must match ${WORKLOAD_NAME_PATTERN.source}`);
      if (!(await withInfra("redis", () => d.accounts.delete(req.name), logger))) {
        throw new ConnectError(`service account ${req.name} not found`, Code.NotFound);
      }
      logger.info({ event: "service_account_deleted", serviceAccount: req.name }, "service account deleted");
      return {};
    },
    async rotateServiceAccountKey(req) {
      if (!WORKLOAD_NAME_PATTERN.test(req.name)) throw invalid(`name must match ${WORKLOAD_NAME_PATTERN.source}`);
      const rotated = await withInfra("redis", () => d.accounts.rotateKey(req.name), logger);
      if (rotated === undefined) throw new ConnectError(`service account ${req.name} not found`, Code.NotFound);
      logger.info(
        { event: "service_account_key_rotated", serviceAccount: req.name, keyId: rotated.account.keyId },
        "service account API key rotated",
      );
      return { serviceAccount: accountToProto(rotated.account), apiKey: rotated.apiKey };
    },
  };
}
