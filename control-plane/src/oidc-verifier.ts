import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";

/** Asymmetric JWS algorithms accepted for ID tokens; `none` and HMAC never are. */
export const ID_TOKEN_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

/** Options for {@link OidcVerifier}. */
export interface OidcVerifierOptions {
  /** Issuer URL; must equal the discovery document's `issuer` and the tokens' `iss`. */
  issuer: string;
  /** Client id: the tokens' audience. */
  clientId: string;
  /** JWKS URL; default: `jwks_uri` from `<issuer>/.well-known/openid-configuration`. */
  jwksUrl?: string;
  /** Tolerated clock difference, seconds. Default 60. */
  clockToleranceSec?: number;
  /** Timeout for discovery and JWKS requests, ms. Default 5000. */
  timeoutMs?: number;
}

/** Why an ID token was refused; `code` is stable, `message` safe to show (no token content). */
export class IdTokenError extends Error {
  override readonly name = "IdTokenError";
  readonly code:
    | "ERR_ID_TOKEN_MALFORMED"
    | "ERR_ID_TOKEN_ALG"
    | "ERR_ID_TOKEN_KEY"
    | "ERR_ID_TOKEN_SIGNATURE"
    | "ERR_ID_TOKEN_EXPIRED"
    | "ERR_ID_TOKEN_CLAIM"
    | "ERR_ID_TOKEN_NONCE"
    | "ERR_IDP_UNREACHABLE";

  constructor(code: IdTokenError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A verified ID token. */
export interface VerifiedIdToken {
  issuer: string;
  subject: string;
  /** Expiry, Unix seconds. */
  expiresAtSec: number;
  claims: JWTPayload;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/**
 * Verifies OIDC ID tokens against one issuer: signature by a key from the issuer's JWKS
 * (fetched, cached and refreshed on an unknown `kid` by jose), asymmetric algorithms only,
 * `iss`, `aud` (and `azp` with several audiences), `exp`, `nbf`, `iat`, and `nonce` when the
 * client used one.
 */
export class OidcVerifier {
  readonly #options: Required<Omit<OidcVerifierOptions, "jwksUrl">> & { jwksUrl?: string };
  #jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  constructor(options: OidcVerifierOptions) {
    this.#options = { clockToleranceSec: 60, timeoutMs: 5000, ...options };
  }

  get issuer(): string {
    return this.#options.issuer;
  }

  get clientId(): string {
    return this.#options.clientId;
  }

  async #discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const o = this.#options;
    let jwksUrl = o.jwksUrl;
    if (jwksUrl === undefined) {
      const url = `${trimSlash(o.issuer)}/.well-known/openid-configuration`;
      let doc: { issuer?: unknown; jwks_uri?: unknown };
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs), redirect: "error" });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        doc = (await res.json()) as typeof doc;
      } catch (cause) {
        throw new IdTokenError("ERR_IDP_UNREACHABLE", `cannot read the issuer's discovery document ${url}`, { cause });
      }
      if (typeof doc.issuer !== "string" || trimSlash(doc.issuer) !== trimSlash(o.issuer)) {
        throw new IdTokenError("ERR_IDP_UNREACHABLE", "discovery document names another issuer");
      }
      if (typeof doc.jwks_uri !== "string") throw new IdTokenError("ERR_IDP_UNREACHABLE", "discovery has no jwks_uri");
      jwksUrl = doc.jwks_uri;
    }
    return createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: o.timeoutMs, cooldownDuration: 30_000 });
  }

  #keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.#jwks === undefined) {
      const p = this.#discover();
      this.#jwks = p;
      // A failed discovery is retried on the next login.
      p.catch(() => {
        if (this.#jwks === p) this.#jwks = undefined;
      });
    }
    return this.#jwks;
  }

  /** Verifies `idToken`; `nonce` (when not empty) must equal its `nonce` claim. */
  async verify(idToken: string, nonce = ""): Promise<VerifiedIdToken> {
    const o = this.#options;
    const jwks = await this.#keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, jwks, {
        algorithms: [...ID_TOKEN_ALGORITHMS],
        issuer: o.issuer,
        audience: o.clientId,
        clockTolerance: o.clockToleranceSec,
        requiredClaims: ["iss", "sub", "aud", "exp", "iat"],
      }));
    } catch (err) {
      throw toIdTokenError(err);
    }
    const aud = payload.aud;
    if (Array.isArray(aud) && aud.length > 1 && payload.azp !== o.clientId) {
      throw new IdTokenError("ERR_ID_TOKEN_CLAIM", "ID token has several audiences and azp is not this client");
    }
    if (nonce !== "" && payload.nonce !== nonce) {
      throw new IdTokenError("ERR_ID_TOKEN_NONCE", "ID token nonce does not match the login request");
    }
    if (nonce === "" && payload.nonce !== undefined) {
      throw new IdTokenError("ERR_ID_TOKEN_NONCE", "ID token carries a nonce but the login request has none");
    }
    return {
      issuer: payload.iss as string,
      subject: payload.sub as string,
      expiresAtSec: payload.exp as number,
      claims: payload,
    };
  }
}

function toIdTokenError(err: unknown): IdTokenError {
  if (err instanceof IdTokenError) return err;
  if (err instanceof errors.JWTExpired)
    return new IdTokenError("ERR_ID_TOKEN_EXPIRED", "ID token expired", { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new IdTokenError("ERR_ID_TOKEN_CLAIM", `ID token claim ${err.claim} is not valid (${err.reason})`, {
      cause: err,
    });
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new IdTokenError("ERR_ID_TOKEN_ALG", "ID token algorithm not allowed (asymmetric algorithms only)", {
      cause: err,
    });
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new IdTokenError("ERR_ID_TOKEN_KEY", "ID token signed by a key the issuer does not publish", { cause: err });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new IdTokenError("ERR_ID_TOKEN_SIGNATURE", "ID token signature is not valid", { cause: err });
  }
  if (err instanceof errors.JWKSTimeout || (err instanceof errors.JOSEError && err.code === "ERR_JOSE_GENERIC")) {
    return new IdTokenError("ERR_IDP_UNREACHABLE", "cannot fetch the issuer's keys", { cause: err });
  }
  return new IdTokenError("ERR_ID_TOKEN_MALFORMED", "ID token is malformed", { cause: err });
}
