import { type GatewayCredential, parseWorkloadRoleArn } from "@tollgate/sdk";
import {
  anchoredRegExp,
  claimStrings,
  claimValue,
  globToRegExp,
  MissingClaimError,
  renderPrincipalTemplate,
} from "./claim-match.js";
import type { ConnectionRegistry } from "./connection-registry.js";
import { type CredentialIssuer, DEFAULT_CREDENTIAL_TTL_SEC, PRINCIPAL_PATTERN } from "./credential-issuer.js";
import type { CredentialRevocations } from "./credential-revocations.js";
import type { TrustRuleRecord, TrustRuleStore } from "./trust-rule-store.js";
import {
  claimedIdentity,
  type VerifiedWebIdentity,
  WebIdentityError,
  WebIdentityVerifier,
} from "./web-identity-verifier.js";

/** STS: `RoleSessionName` is 2..64 of `[\w+=,.@-]`. */
export const ROLE_SESSION_NAME_PATTERN = /^[\w+=,.@-]{2,64}$/;
/** STS accepts `DurationSeconds` from 900 s up to the role's maximum (at most 12 h). */
export const MIN_DURATION_SEC = 900;
export const MAX_DURATION_SEC = 43_200;
/** STS caps a web identity token at 20000 characters. */
export const MAX_WEB_IDENTITY_TOKEN_CHARS = 20_000;

/** What an edge asks for (the STS call's parameters). */
export interface WebIdentityExchangeRequest {
  roleArn: string;
  roleSessionName: string;
  webIdentityToken: string;
  /** 0 = not given. */
  durationSec: number;
}

/** A successful exchange. */
export interface WebIdentityGrant {
  ok: true;
  subject: string;
  principal: string;
  connection: string;
  provider: string;
  audience: string;
  groups: string[];
  rule: string;
  accountId: string;
  credential: GatewayCredential;
  ttlSec: number;
}

/** A refused exchange. */
export interface WebIdentityRefusal {
  ok: false;
  code: WebIdentityError["code"];
  message: string;
  /** Claimed (unverified) subject, for the audit record. */
  subject: string;
  /** Connection named by the role ARN, "" if it could not be parsed. */
  connection: string;
  provider: string;
  /** The rule that came closest, for logs. */
  rule: string;
}

/** What {@link WebIdentityExchange} needs. */
export interface WebIdentityExchangeDeps {
  rules: TrustRuleStore;
  registry: ConnectionRegistry;
  issuer: CredentialIssuer;
  /** A revoked principal gets no credential (AccessDenied). */
  revocations: CredentialRevocations;
  verifier: WebIdentityVerifier;
  /** Clock, ms. Default Date.now. */
  nowMs?: () => number;
}

/** How specific a refusal is: when several rules refuse, the caller hears the most specific reason. */
const SPECIFICITY: Readonly<Record<WebIdentityError["code"], number>> = {
  ValidationError: 0,
  InvalidParameterValue: 0,
  InvalidIdentityToken: 1,
  IDPCommunicationError: 2,
  ExpiredTokenException: 3,
  AccessDenied: 4,
  IDPRejectedClaim: 5,
};

/**
 * Exchanges a web identity token for a gateway credential: the role ARN names the connection
 * (and optionally one trust rule), the token must be verified by one of the connection's rules
 * whose issuer is the token's, and the rule's subject pattern and claim conditions must hold.
 * Redis failures are thrown (the edge answers 503); every other failure is a refusal.
 */
export class WebIdentityExchange {
  readonly #d: Required<WebIdentityExchangeDeps>;

  constructor(deps: WebIdentityExchangeDeps) {
    this.#d = { nowMs: Date.now, ...deps };
  }

  async exchange(req: WebIdentityExchangeRequest): Promise<WebIdentityGrant | WebIdentityRefusal> {
    const claimed = claimedIdentity(req.webIdentityToken);
    const role = parseWorkloadRoleArn(req.roleArn);
    const refusal = (err: WebIdentityError, rule = ""): WebIdentityRefusal => ({
      ok: false,
      code: err.code,
      message: err.message,
      subject: claimed.subject,
      connection: role?.connection ?? "",
      provider: claimed.issuer,
      rule,
    });
    if (req.webIdentityToken === "" || req.roleSessionName === "" || req.roleArn === "") {
      return refusal(
        new WebIdentityError("ValidationError", "RoleArn, RoleSessionName and WebIdentityToken are required."),
      );
    }
    if (req.webIdentityToken.length > MAX_WEB_IDENTITY_TOKEN_CHARS) {
      return refusal(new WebIdentityError("ValidationError", "WebIdentityToken is longer than 20000 characters."));
    }
    if (!ROLE_SESSION_NAME_PATTERN.test(req.roleSessionName)) {
      return refusal(
        new WebIdentityError("ValidationError", "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-]."),
      );
    }
    if (req.durationSec !== 0 && (req.durationSec < MIN_DURATION_SEC || req.durationSec > MAX_DURATION_SEC)) {
      return refusal(
        new WebIdentityError(
          "ValidationError",
          `DurationSeconds must be between ${MIN_DURATION_SEC} and ${MAX_DURATION_SEC}.`,
        ),
      );
    }
    if (role === undefined) {
      return refusal(
        new WebIdentityError(
          "InvalidParameterValue",
          "RoleArn is not a Tollgate role: arn:aws:iam::<account>:role/tollgate/<connection>[/<rule>].",
        ),
      );
    }
    try {
      // Before any lookup: an `alg: none` or HS256 token never costs a JWKS fetch.
      WebIdentityVerifier.checkHeader(req.webIdentityToken);
    } catch (err) {
      if (err instanceof WebIdentityError) return refusal(err);
      throw err;
    }
    const connection = await this.#d.registry.get(role.connection);
    const notAuthorized = new WebIdentityError(
      "AccessDenied",
      "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    );
    if (connection === undefined) return refusal(notAuthorized);
    if (/^\d{12}$/.test(connection.accountId) && connection.accountId !== role.accountId) {
      return refusal(notAuthorized);
    }
    const rules = (await this.#d.rules.list(role.connection)).filter(
      (r) => r.connection === role.connection && (role.rule === undefined || r.name === role.rule),
    );
    if (rules.length === 0) return refusal(notAuthorized);
    const candidates = rules.filter((r) => r.issuer === claimed.issuer);
    if (candidates.length === 0) {
      return refusal(
        new WebIdentityError(
          "InvalidIdentityToken",
          "No OpenIDConnect provider of this role trusts the token's issuer.",
        ),
      );
    }
    let best: { err: WebIdentityError; rule: string } | undefined;
    for (const rule of candidates) {
      try {
        const verified = await this.#d.verifier.verify(req.webIdentityToken, rule);
        return await this.#grant(rule, verified, req, connection.accountId);
      } catch (err) {
        if (!(err instanceof WebIdentityError)) throw err;
        if (best === undefined || SPECIFICITY[err.code] > SPECIFICITY[best.err.code]) best = { err, rule: rule.name };
      }
    }
    const worst = best as { err: WebIdentityError; rule: string };
    return refusal(worst.err, worst.rule);
  }

  async #grant(
    rule: TrustRuleRecord,
    verified: VerifiedWebIdentity,
    req: WebIdentityExchangeRequest,
    accountId: string,
  ): Promise<WebIdentityGrant> {
    const payload = verified.payload as Record<string, unknown>;
    const subject = String(verified.payload.sub ?? "");
    const notAuthorized = new WebIdentityError(
      "AccessDenied",
      "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    );
    if (rule.subjectPattern !== "" && !globToRegExp(rule.subjectPattern).test(subject)) throw notAuthorized;
    for (const c of rule.conditions) {
      const values = claimStrings(claimValue(payload, c.claim));
      const re = c.glob !== "" ? globToRegExp(c.glob) : anchoredRegExp(c.regex);
      if (!values.some((v) => re.test(v))) throw notAuthorized;
    }
    let principal: string;
    try {
      principal = renderPrincipalTemplate(rule.principalTemplate || "{sub}", payload);
    } catch (err) {
      if (!(err instanceof MissingClaimError)) throw err;
      throw new WebIdentityError("IDPRejectedClaim", `The token has no usable ${err.claim} claim for the principal.`);
    }
    if (!PRINCIPAL_PATTERN.test(principal)) {
      throw new WebIdentityError("IDPRejectedClaim", "The token's claims do not form a valid Tollgate principal.");
    }
    const groups = rule.groupsClaim !== "" ? claimStrings(claimValue(payload, rule.groupsClaim)).slice(0, 100) : [];
    const nowSec = Math.floor(this.#d.nowMs() / 1000);
    const exp = typeof verified.payload.exp === "number" ? verified.payload.exp : nowSec;
    const ruleMax = rule.maxTtlSec > 0 ? rule.maxTtlSec : DEFAULT_CREDENTIAL_TTL_SEC;
    const requested = req.durationSec > 0 ? req.durationSec : DEFAULT_CREDENTIAL_TTL_SEC;
    // Capped by the token: the credential never outlives what minted it.
    const ttlSec = Math.min(requested, ruleMax, exp - nowSec);
    if (ttlSec < 1) throw new WebIdentityError("ExpiredTokenException", "Token is expired.");
    if ((await this.#d.revocations.principal(principal)) !== undefined) {
      throw new WebIdentityError("AccessDenied", "The principal is revoked.");
    }
    const credential = await this.#d.issuer.issue(principal, rule.connection, ttlSec);
    return {
      ok: true,
      subject,
      principal,
      connection: rule.connection,
      provider: rule.issuer,
      audience: verified.audience,
      groups,
      rule: rule.name,
      accountId,
      credential,
      ttlSec,
    };
  }
}
