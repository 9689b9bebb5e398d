import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { TollgateError } from "./tollgate-error.js";

/**
 * Gateway credentials are SigV4 key pairs that only Tollgate edges accept.
 *
 * Like AWS STS, the secret travels inside the session token, sealed with AES-256-GCM under a
 * credential key that the control plane shares with its edges. An edge therefore verifies a
 * request without a network round trip: it opens the token, checks expiry and scope, and
 * recomputes the signature with the secret inside. Tokens cannot be forged or altered without
 * the key, and the access key id is bound into the sealed claims.
 */

/** What a sealed session token asserts. */
export interface GatewayCredentialClaims {
  /** Access key id the token belongs to. */
  accessKeyId: string;
  /** SigV4 secret access key. */
  secretAccessKey: string;
  /** Tollgate principal. */
  principal: string;
  /** Connection the credential is scoped to. */
  connection: string;
  /** Stable credential id, recorded in audit events. */
  credentialId: string;
  /** Issue time, Unix seconds. */
  issuedAtSec: number;
  /** Expiry, Unix seconds. */
  expiresAtSec: number;
}

/** A credential key: `keyId` names it inside tokens so keys can rotate. */
export interface CredentialKey {
  keyId: string;
  /** 32 bytes. */
  key: Uint8Array;
}

/** A freshly issued gateway credential. */
export interface GatewayCredential extends GatewayCredentialClaims {
  sessionToken: string;
}

const TOKEN_PREFIX = "tg1";
const AAD = Buffer.from("tollgate-gateway-credential-v1");
const ACCESS_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Creates a new random credential key. */
export function generateCredentialKey(): CredentialKey {
  return { keyId: randomBytes(6).toString("hex"), key: randomBytes(32) };
}

function randomAccessKeyId(): string {
  const bytes = randomBytes(16);
  let id = "TGIA";
  for (const b of bytes) id += ACCESS_KEY_ALPHABET[b & 31];
  return id;
}

/** Options for {@link issueGatewayCredential}. */
export interface IssueGatewayCredentialOptions {
  principal: string;
  connection: string;
  ttlSec: number;
  /** Sealing key (the newest credential key). */
  key: CredentialKey;
  /** Clock, for tests. Default `Date.now`. */
  nowMs?: number;
}

/** Mints a gateway credential sealed under `key`. */
export function issueGatewayCredential(options: IssueGatewayCredentialOptions): GatewayCredential {
  const now = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const claims: GatewayCredentialClaims = {
    accessKeyId: randomAccessKeyId(),
    secretAccessKey: randomBytes(30).toString("base64url"),
    principal: options.principal,
    connection: options.connection,
    credentialId: `cred-${randomBytes(9).toString("hex")}`,
    issuedAtSec: now,
    expiresAtSec: now + options.ttlSec,
  };
  return { ...claims, sessionToken: sealClaims(claims, options.key) };
}

function sealClaims(claims: GatewayCredentialClaims, key: CredentialKey): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key.key, iv);
  cipher.setAAD(AAD);
  const body = Buffer.from(
    JSON.stringify({
      a: claims.accessKeyId,
      s: claims.secretAccessKey,
      p: claims.principal,
      c: claims.connection,
      i: claims.credentialId,
      t: claims.issuedAtSec,
      e: claims.expiresAtSec,
    }),
  );
  const sealed = Buffer.concat([iv, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
  return `${TOKEN_PREFIX}.${key.keyId}.${sealed.toString("base64url")}`;
}

/**
 * Opens a session token and returns its claims. Throws {@link TollgateError} with
 * `ERR_CREDENTIAL_MALFORMED`, `ERR_CREDENTIAL_UNKNOWN_KEY` or `ERR_CREDENTIAL_INVALID`.
 * Expiry is not checked here: callers decide how to report it.
 */
export function openSessionToken(sessionToken: string, keys: ReadonlyMap<string, Uint8Array>): GatewayCredentialClaims {
  const parts = sessionToken.split(".");
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX) {
    throw new TollgateError("ERR_CREDENTIAL_MALFORMED", "not a Tollgate session token");
  }
  const key = keys.get(parts[1] as string);
  if (key === undefined) {
    throw new TollgateError("ERR_CREDENTIAL_UNKNOWN_KEY", "session token sealed with an unknown key");
  }
  const sealed = Buffer.from(parts[2] as string, "base64url");
  if (sealed.length < 12 + 16 + 2) {
    throw new TollgateError("ERR_CREDENTIAL_MALFORMED", "session token too short");
  }
  let body: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
    decipher.setAAD(AAD);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    body = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
  } catch (cause) {
    throw new TollgateError("ERR_CREDENTIAL_INVALID", "session token failed authentication", { cause });
  }
  const raw = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  const str = (k: string): string => {
    const v = raw[k];
    if (typeof v !== "string") throw new TollgateError("ERR_CREDENTIAL_MALFORMED", `claim ${k} missing`);
    return v;
  };
  const num = (k: string): number => {
    const v = raw[k];
    if (typeof v !== "number") throw new TollgateError("ERR_CREDENTIAL_MALFORMED", `claim ${k} missing`);
    return v;
  };
  return {
    accessKeyId: str("a"),
    secretAccessKey: str("s"),
    principal: str("p"),
    connection: str("c"),
    credentialId: str("i"),
    issuedAtSec: num("t"),
    expiresAtSec: num("e"),
  };
}
