import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import type { Logger } from "./logger.js";
import { ID_TOKEN_ALGORITHMS } from "./oidc-verifier.js";
import type { TrustRuleRecord } from "./trust-rule-store.js";

/** Signature algorithms accepted in web identity tokens: the same asymmetric set as ID tokens. */
export const WEB_IDENTITY_ALGORITHMS: readonly string[] = ID_TOKEN_ALGORITHMS;

/** STS error codes an exchange can end with. */
export type WebIdentityErrorCode =
  | "InvalidIdentityToken"
  | "ExpiredTokenException"
  | "AccessDenied"
  | "IDPRejectedClaim"
  | "IDPCommunicationError"
  | "InvalidParameterValue"
  | "ValidationError";

/** A refused exchange, with the STS error code the caller gets. */
export class WebIdentityError extends Error {
  constructor(
    readonly code: WebIdentityErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "WebIdentityError";
  }
}

/** Options for {@link WebIdentityVerifier}. */
export interface WebIdentityVerifierOptions {
  logger: Logger;
  /** Clock tolerance for `exp`/`nbf`/`iat`, seconds. Default 30. */
  clockToleranceSec?: number;
  /** Least time between two JWKS fetches of one URL (an unknown `kid` triggers one), ms. Default 30000. */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before a refetch, ms. Default 600000. */
  jwksMaxAgeMs?: number;
  /** HTTP timeout of JWKS and discovery fetches, ms. Default 5000. */
  fetchTimeoutMs?: number;
  /** How long a discovered `jwks_uri` is kept, ms. Default 3600000. */
  discoveryMaxAgeMs?: number;
}

/** The token's unverified claims, for logs and audit of refusals (never trusted otherwise). */
export interface ClaimedIdentity {
  subject: string;
  issuer: string;
}

/** Reads `sub` and `iss` of a token without verifying it; empty strings when unreadable. */
export function claimedIdentity(token: string): ClaimedIdentity {
  try {
    const payload = decodeJwt(token);
    return {
      subject: typeof payload.sub === "string" ? payload.sub.slice(0, 256) : "",
      issuer: typeof payload.iss === "string" ? payload.iss.slice(0, 256) : "",
    };
  } catch {
    return { subject: "", issuer: "" };
  }
}

/** A verified token. */
export interface VerifiedWebIdentity {
  payload: JWTPayload;
  /** The rule's audience that the token carries. */
  audience: string;
}

/**
 * Verifies web identity tokens against a trust rule with `jose`: signature by a key of the
 * rule's JWKS (fetched, cached and refetched on an unknown `kid` with a cooldown, by
 * `createRemoteJWKSet`), asymmetric algorithms only, issuer, audience, `exp`, `nbf`.
 */
export class WebIdentityVerifier {
  readonly #o: Required<WebIdentityVerifierOptions>;
  readonly #jwks = new Map<string, JWTVerifyGetKey>();
  readonly #discovered = new Map<string, { jwksUrl: string; fetchedAtMs: number }>();

  constructor(options: WebIdentityVerifierOptions) {
    this.#o = {
      clockToleranceSec: 30,
      jwksCooldownMs: 30_000,
      jwksMaxAgeMs: 600_000,
      fetchTimeoutMs: 5000,
      discoveryMaxAgeMs: 3_600_000,
      ...options,
    };
  }

  /** Throws {@link WebIdentityError} unless the token's header is a JWS header with an allowed algorithm. */
  static checkHeader(token: string): void {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch (cause) {
      throw new WebIdentityError("InvalidIdentityToken", "The web identity token is not a valid JWT.", { cause });
    }
    if (typeof alg !== "string" || !WEB_IDENTITY_ALGORITHMS.includes(alg)) {
      throw new WebIdentityError(
        "InvalidIdentityToken",
        `The web identity token's signing algorithm ${JSON.stringify(String(alg))} is not allowed.`,
      );
    }
  }

  /** Verifies `token` for `rule`; throws {@link WebIdentityError}. */
  async verify(token: string, rule: TrustRuleRecord): Promise<VerifiedWebIdentity> {
    WebIdentityVerifier.checkHeader(token);
    const getKey = await this.#keySet(rule);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: rule.issuer,
        audience: rule.audiences,
        algorithms: [...WEB_IDENTITY_ALGORITHMS],
        clockTolerance: this.#o.clockToleranceSec,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (err) {
      throw mapJoseError(err);
    }
    const tokenAud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const audience = rule.audiences.find((a) => tokenAud.includes(a)) ?? "";
    return { payload, audience };
  }

  async #keySet(rule: TrustRuleRecord): Promise<JWTVerifyGetKey> {
    const url = rule.jwksUrl !== "" ? rule.jwksUrl : await this.#discover(rule.issuer);
    let set = this.#jwks.get(url);
    if (set === undefined) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch (cause) {
        throw new WebIdentityError("IDPCommunicationError", "The trust rule's JWKS URL is invalid.", { cause });
      }
      set = createRemoteJWKSet(parsed, {
        cooldownDuration: this.#o.jwksCooldownMs,
        cacheMaxAge: this.#o.jwksMaxAgeMs,
        timeoutDuration: this.#o.fetchTimeoutMs,
      });
      this.#jwks.set(url, set);
    }
    return set;
  }

  /** `jwks_uri` from `<issuer>/.well-known/openid-configuration`, cached. */
  async #discover(issuer: string): Promise<string> {
    const known = this.#discovered.get(issuer);
    if (known !== undefined && Date.now() - known.fetchedAtMs < this.#o.discoveryMaxAgeMs) return known.jwksUrl;
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.#o.fetchTimeoutMs), redirect: "error" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== issuer || typeof doc.jwks_uri !== "string") {
        throw new Error("discovery document does not match the issuer or has no jwks_uri");
      }
      this.#discovered.set(issuer, { jwksUrl: doc.jwks_uri, fetchedAtMs: Date.now() });
      return doc.jwks_uri;
    } catch (cause) {
      this.#o.logger.warn({ err: cause, issuer }, "OIDC discovery failed");
      throw new WebIdentityError(
        "IDPCommunicationError",
        "Could not reach the identity provider's discovery document.",
        {
          cause,
        },
      );
    }
  }
}

/** Maps jose's errors to STS error codes. */
function mapJoseError(err: unknown): WebIdentityError {
  if (err instanceof WebIdentityError) return err;
  if (err instanceof errors.JWTExpired) {
    return new WebIdentityError("ExpiredTokenException", "Token is expired.", { cause: err });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const message =
      err.claim === "aud"
        ? "Incorrect token audience."
        : err.claim === "iss"
          ? "Incorrect token issuer."
          : err.claim === "nbf"
            ? "Token is not yet valid."
            : `Token claim ${err.claim} is invalid: ${err.reason}.`;
    return new WebIdentityError("InvalidIdentityToken", message, { cause: err });
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new WebIdentityError("InvalidIdentityToken", "No key of the identity provider matches the token.", {
      cause: err,
    });
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    return new WebIdentityError("IDPCommunicationError", "Could not fetch the identity provider's keys.", {
      cause: err,
    });
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new WebIdentityError("InvalidIdentityToken", "The token's signing algorithm is not allowed.", {
      cause: err,
    });
  }
  if (err instanceof errors.JOSEError) {
    // Signature mismatch, malformed token, claims not JSON, ...
    return new WebIdentityError("InvalidIdentityToken", "The web identity token could not be verified.", {
      cause: err,
    });
  }
  // fetch failures of the JWKS (network errors are not JOSEErrors).
  return new WebIdentityError("IDPCommunicationError", "Could not fetch the identity provider's keys.", { cause: err });
}
