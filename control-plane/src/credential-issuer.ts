import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { IssueCredentialResponseSchema } from "@tollgate/proto";
import type { CredentialKey, GatewayCredential } from "@tollgate/sdk";
import { issueGatewayCredential } from "@tollgate/sdk";
import type { Redis } from "ioredis";

/** Principals: `[A-Za-z0-9][A-Za-z0-9._@+=:-]{0,127}`. */
export const PRINCIPAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+=:-]{0,127}$/;
/** Default credential lifetime, seconds. */
export const DEFAULT_CREDENTIAL_TTL_SEC = 3600;
/** Shortest allowed credential lifetime, seconds. */
export const MIN_CREDENTIAL_TTL_SEC = 60;
/** Longest allowed credential lifetime, seconds. */
export const MAX_CREDENTIAL_TTL_SEC = 43_200;

/** What is recorded about an issued credential (never its secret or token). */
export interface IssuedCredentialRecord {
  credentialId: string;
  accessKeyId: string;
  principal: string;
  connection: string;
  issuedAtSec: number;
  expiresAtSec: number;
}

/**
 * Mints gateway credentials with the newest credential key and records their metadata in
 * Redis under `<prefix>credential:<credentialId>`, expiring with the credential, for later
 * listing and revocation; `<prefix>credential-akid:<accessKeyId>` maps an access key id to its
 * credential id and the sorted set `<prefix>credentials` (score = expiry, Unix s) lists them.
 */
export class CredentialIssuer {
  readonly #redis: Redis;
  readonly #keys: readonly CredentialKey[];
  readonly #prefix: string;

  /** @param keys credential keys, newest first. */
  constructor(redis: Redis, keys: readonly CredentialKey[], prefix: string) {
    if (keys.length === 0) throw new Error("no credential keys");
    this.#redis = redis;
    this.#keys = keys;
    this.#prefix = prefix;
  }

  /** Redis key of an issued credential's record. */
  recordKey(credentialId: string): string {
    return `${this.#prefix}credential:${credentialId}`;
  }

  async issue(principal: string, connection: string, ttlSec: number): Promise<GatewayCredential> {
    const key = this.#keys[0] as CredentialKey;
    const cred = issueGatewayCredential({ principal, connection, ttlSec, key });
    const record: IssuedCredentialRecord = {
      credentialId: cred.credentialId,
      accessKeyId: cred.accessKeyId,
      principal: cred.principal,
      connection: cred.connection,
      issuedAtSec: cred.issuedAtSec,
      expiresAtSec: cred.expiresAtSec,
    };
    await this.#redis
      .multi()
      .set(this.recordKey(cred.credentialId), JSON.stringify(record), "EX", ttlSec)
      .set(this.#akidKey(cred.accessKeyId), cred.credentialId, "EX", ttlSec)
      .zadd(this.#listKey, cred.expiresAtSec, cred.credentialId)
      .exec();
    return cred;
  }

  #akidKey(accessKeyId: string): string {
    return `${this.#prefix}credential-akid:${accessKeyId}`;
  }

  get #listKey(): string {
    return `${this.#prefix}credentials`;
  }

  /** The record of an unexpired credential, by credential id or access key id. */
  async find(by: { credentialId: string } | { accessKeyId: string }): Promise<IssuedCredentialRecord | undefined> {
    const id = "credentialId" in by ? by.credentialId : await this.#redis.get(this.#akidKey(by.accessKeyId));
    if (id === null || id === "") return undefined;
    const raw = await this.#redis.get(this.recordKey(id));
    return raw === null ? undefined : (JSON.parse(raw) as IssuedCredentialRecord);
  }

  /** Unexpired credentials (optionally of one principal), soonest expiry first. */
  async list(principal?: string, nowSec = Math.floor(Date.now() / 1000)): Promise<IssuedCredentialRecord[]> {
    await this.#redis.zremrangebyscore(this.#listKey, "-inf", nowSec);
    const ids = await this.#redis.zrange(this.#listKey, 0, -1);
    if (ids.length === 0) return [];
    const raws = await this.#redis.mget(ids.map((id) => this.recordKey(id)));
    return raws
      .filter((raw): raw is string => raw !== null)
      .map((raw) => JSON.parse(raw) as IssuedCredentialRecord)
      .filter((rec) => principal === undefined || principal === "" || rec.principal === principal);
  }
}

/** A minted credential as the `IssueCredentialResponse` every credential-issuing RPC returns. */
export function credentialResponse(cred: GatewayCredential): MessageInitShape<typeof IssueCredentialResponseSchema> {
  return {
    accessKeyId: cred.accessKeyId,
    secretAccessKey: cred.secretAccessKey,
    sessionToken: cred.sessionToken,
    expireTime: timestampFromMs(cred.expiresAtSec * 1000),
    credentialId: cred.credentialId,
    principal: cred.principal,
    connection: cred.connection,
  };
}
