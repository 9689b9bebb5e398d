import type { Redis } from "ioredis";
import type { SecretBox } from "./secret-box.js";

/** Connection names: `[a-z0-9][a-z0-9-]{0,62}`. */
export const CONNECTION_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Default region of a connection that names none. */
export const DEFAULT_REGION = "us-east-1";

/** Where a connection's base upstream credentials come from. */
export type UpstreamCredentialSourceName = "static" | "edge";

/** A connection as the admin API sees it: no secrets. */
export interface ConnectionInfo {
  name: string;
  region: string;
  upstreamEndpoint: string;
  upstreamAccessKeyId: string;
  accountId: string;
  hasUpstreamSecret: boolean;
  /** "static" (stored keys) or "edge" (the edge process's own AWS credentials). */
  credentialSource: UpstreamCredentialSourceName;
  /** Role the edge assumes with the base credentials; "" = none. */
  roleArn: string;
  externalId: string;
  createTimeMs: number;
  updateTimeMs: number;
}

/** A connection with its decrypted upstream secrets, for edges only. */
export interface ConnectionWithSecrets extends ConnectionInfo {
  upstreamSecretAccessKey: string;
  upstreamSessionToken: string;
}

/** What a caller supplies to create or replace a connection. */
export interface ConnectionInput {
  name: string;
  region?: string;
  upstreamEndpoint?: string;
  upstreamAccessKeyId?: string;
  accountId?: string;
  upstreamSecretAccessKey?: string;
  upstreamSessionToken?: string;
  credentialSource?: UpstreamCredentialSourceName;
  roleArn?: string;
  externalId?: string;
}

/** Stored form: secrets sealed with the data key. */
interface StoredConnection {
  name: string;
  region: string;
  upstreamEndpoint: string;
  upstreamAccessKeyId: string;
  accountId: string;
  sealedSecretAccessKey: string;
  sealedSessionToken: string;
  createTimeMs: number;
  updateTimeMs: number;
  /** Absent in records written before upstream identity existed: "static". */
  credentialSource?: UpstreamCredentialSourceName;
  roleArn?: string;
  externalId?: string;
}

/** Result of {@link ConnectionRegistry.create}. */
export type CreateResult = { ok: true; connection: ConnectionInfo } | { ok: false; reason: "exists" };

// Atomically: refuse or replace, keep the original create time on replace, bump the revision.
const CREATE_SCRIPT = `
local old = redis.call("HGET", KEYS[1], ARGV[1])
if old and ARGV[2] ~= "1" then return false end
local rec = cjson.decode(ARGV[3])
if old then rec.createTimeMs = cjson.decode(old).createTimeMs end
local out = cjson.encode(rec)
redis.call("HSET", KEYS[1], ARGV[1], out)
redis.call("INCR", KEYS[2])
return out
`;

const DELETE_SCRIPT = `
if redis.call("HDEL", KEYS[1], ARGV[1]) == 1 then
  redis.call("INCR", KEYS[2])
  return 1
end
return 0
`;

/**
 * The connection registry in Redis: one hash `<prefix>connections` (name → JSON record) and a
 * revision counter `<prefix>revision` that every change increments, so edges can tell when
 * their configuration is stale. Upstream secrets are sealed with the data key and only
 * {@link listWithSecrets} opens them.
 */
export class ConnectionRegistry {
  readonly #redis: Redis;
  readonly #box: SecretBox;
  readonly #hashKey: string;
  readonly #revisionKey: string;

  constructor(redis: Redis, box: SecretBox, prefix: string) {
    this.#redis = redis;
    this.#box = box;
    this.#hashKey = `${prefix}connections`;
    this.#revisionKey = `${prefix}revision`;
  }

  /** Redis key of the connections hash (for tests and operators). */
  get hashKey(): string {
    return this.#hashKey;
  }

  /** Creates a connection; refuses an existing name unless `allowReplace`. */
  async create(input: ConnectionInput, allowReplace: boolean, nowMs = Date.now()): Promise<CreateResult> {
    const secret = input.upstreamSecretAccessKey ?? "";
    const session = input.upstreamSessionToken ?? "";
    const record: StoredConnection = {
      name: input.name,
      region: input.region || DEFAULT_REGION,
      upstreamEndpoint: input.upstreamEndpoint ?? "",
      upstreamAccessKeyId: input.upstreamAccessKeyId ?? "",
      accountId: input.accountId ?? "",
      sealedSecretAccessKey: secret === "" ? "" : this.#box.seal(secret, `connection:${input.name}:secret`),
      sealedSessionToken: session === "" ? "" : this.#box.seal(session, `connection:${input.name}:session`),
      createTimeMs: nowMs,
      updateTimeMs: nowMs,
      credentialSource: input.credentialSource ?? "static",
      roleArn: input.roleArn ?? "",
      externalId: input.externalId ?? "",
    };
    const out = (await this.#redis.eval(
      CREATE_SCRIPT,
      2,
      this.#hashKey,
      this.#revisionKey,
      input.name,
      allowReplace ? "1" : "0",
      JSON.stringify(record),
    )) as string | null;
    if (out === null) return { ok: false, reason: "exists" };
    return { ok: true, connection: toInfo(JSON.parse(out) as StoredConnection) };
  }

  async get(name: string): Promise<ConnectionInfo | undefined> {
    const raw = await this.#redis.hget(this.#hashKey, name);
    return raw === null ? undefined : toInfo(JSON.parse(raw) as StoredConnection);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.#redis.hexists(this.#hashKey, name)) === 1;
  }

  /** All connections, sorted by name. */
  async list(): Promise<ConnectionInfo[]> {
    const all = await this.#redis.hgetall(this.#hashKey);
    return sortByName(Object.values(all).map((raw) => toInfo(JSON.parse(raw) as StoredConnection)));
  }

  /** Deletes a connection; false when it did not exist. */
  async delete(name: string): Promise<boolean> {
    return (await this.#redis.eval(DELETE_SCRIPT, 2, this.#hashKey, this.#revisionKey, name)) === 1;
  }

  /** Every connection with decrypted secrets, and the revision they belong to (read atomically). */
  async listWithSecrets(): Promise<{ connections: ConnectionWithSecrets[]; revision: bigint }> {
    const results = await this.#redis.multi().hgetall(this.#hashKey).get(this.#revisionKey).exec();
    if (results === null) throw new Error("redis transaction aborted");
    const [hashResult, revResult] = results;
    if (hashResult?.[0]) throw hashResult[0];
    if (revResult?.[0]) throw revResult[0];
    const all = (hashResult?.[1] ?? {}) as Record<string, string>;
    const revision = BigInt((revResult?.[1] as string | null) ?? "0");
    const connections = Object.values(all).map((raw) => {
      const rec = JSON.parse(raw) as StoredConnection;
      return {
        ...toInfo(rec),
        upstreamSecretAccessKey:
          rec.sealedSecretAccessKey === ""
            ? ""
            : this.#box.open(rec.sealedSecretAccessKey, `connection:${rec.name}:secret`),
        upstreamSessionToken:
          rec.sealedSessionToken === "" ? "" : this.#box.open(rec.sealedSessionToken, `connection:${rec.name}:session`),
      };
    });
    return { connections: sortByName(connections), revision };
  }

  /** Current revision (0 before the first change). */
  async revision(): Promise<bigint> {
    return BigInt((await this.#redis.get(this.#revisionKey)) ?? "0");
  }
}

function toInfo(rec: StoredConnection): ConnectionInfo {
  return {
    name: rec.name,
    region: rec.region,
    upstreamEndpoint: rec.upstreamEndpoint,
    upstreamAccessKeyId: rec.upstreamAccessKeyId,
    accountId: rec.accountId,
    hasUpstreamSecret: rec.sealedSecretAccessKey !== "",
    createTimeMs: rec.createTimeMs,
    updateTimeMs: rec.updateTimeMs,
    credentialSource: rec.credentialSource ?? "static",
    roleArn: rec.roleArn ?? "",
    externalId: rec.externalId ?? "",
  };
}

function sortByName<T extends { name: string }>(items: T[]): T[] {
  return items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
