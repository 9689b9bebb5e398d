import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";

/** A service account as stored: its API key only as a SHA-256 hash. */
export interface ServiceAccountRecord {
  name: string;
  connection: string;
  principal: string;
  /** Public part of the API key (`tgsk_` + 16 hex), used to find the account. */
  keyId: string;
  /** SHA-256 (hex) of the whole API key. */
  keySha256: string;
  credentialTtlSec: number;
  createTimeMs: number;
}

/** API keys: `tgsk_<16 hex key id>_<43 base64url chars: 256 random bits>`. */
const API_KEY = /^(tgsk_[0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;

/** A new API key and its id. */
export function generateApiKey(): { apiKey: string; keyId: string } {
  const keyId = `tgsk_${randomBytes(8).toString("hex")}`;
  return { apiKey: `${keyId}_${randomBytes(32).toString("base64url")}`, keyId };
}

function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

/** Result of {@link ServiceAccountStore.create}. */
export type CreateServiceAccountResult =
  | { ok: true; account: ServiceAccountRecord; apiKey: string }
  | { ok: false; reason: "exists" };

// Atomically: refuse an existing name, store the account and its key-id index entry.
const CREATE_SCRIPT = `
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
redis.call("HSET", KEYS[2], ARGV[2], ARGV[1])
return 1
`;

const DELETE_SCRIPT = `
local rec = redis.call("HGET", KEYS[1], ARGV[1])
if not rec then return 0 end
redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], cjson.decode(rec).keyId)
return 1
`;

// Atomically: swap the key id index entry and the stored hash.
const ROTATE_SCRIPT = `
local rec = redis.call("HGET", KEYS[1], ARGV[1])
if not rec then return false end
local account = cjson.decode(rec)
redis.call("HDEL", KEYS[2], account.keyId)
account.keyId = ARGV[2]
account.keySha256 = ARGV[3]
local out = cjson.encode(account)
redis.call("HSET", KEYS[1], ARGV[1], out)
redis.call("HSET", KEYS[2], ARGV[2], ARGV[1])
return out
`;

/**
 * Service accounts in Redis: hash `<prefix>service-accounts` (name → JSON record) and hash
 * `<prefix>service-account-keys` (key id → name) to find the account of a presented key.
 * Deleting an account removes both, so its key stops working at once.
 */
export class ServiceAccountStore {
  readonly #redis: Redis;
  readonly #accounts: string;
  readonly #keys: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#accounts = `${prefix}service-accounts`;
    this.#keys = `${prefix}service-account-keys`;
  }

  async create(
    input: Omit<ServiceAccountRecord, "keyId" | "keySha256" | "createTimeMs">,
    nowMs = Date.now(),
  ): Promise<CreateServiceAccountResult> {
    const { apiKey, keyId } = generateApiKey();
    const account: ServiceAccountRecord = { ...input, keyId, keySha256: sha256Hex(apiKey), createTimeMs: nowMs };
    const created = await this.#redis.eval(
      CREATE_SCRIPT,
      2,
      this.#accounts,
      this.#keys,
      account.name,
      keyId,
      JSON.stringify(account),
    );
    if (created !== 1) return { ok: false, reason: "exists" };
    return { ok: true, account, apiKey };
  }

  async list(): Promise<ServiceAccountRecord[]> {
    const all = await this.#redis.hgetall(this.#accounts);
    return Object.values(all)
      .map((json) => JSON.parse(json) as ServiceAccountRecord)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** True when an account was deleted. */
  async delete(name: string): Promise<boolean> {
    return (await this.#redis.eval(DELETE_SCRIPT, 2, this.#accounts, this.#keys, name)) === 1;
  }

  /** Replaces the account's API key (the old one stops working at once); undefined if there is no such account. */
  async rotateKey(name: string): Promise<{ account: ServiceAccountRecord; apiKey: string } | undefined> {
    const { apiKey, keyId } = generateApiKey();
    const out = await this.#redis.eval(ROTATE_SCRIPT, 2, this.#accounts, this.#keys, name, keyId, sha256Hex(apiKey));
    if (typeof out !== "string") return undefined;
    return { account: JSON.parse(out) as ServiceAccountRecord, apiKey };
  }

  /**
   * The account an API key belongs to, or why not: `malformed` (not an API key), `unknown`
   * (no such key id: never issued, or the account was deleted), `mismatch` (wrong secret).
   */
  async authenticate(
    apiKey: string,
  ): Promise<
    | { ok: true; account: ServiceAccountRecord }
    | { ok: false; reason: "malformed" | "unknown" | "mismatch"; keyId: string }
  > {
    const m = API_KEY.exec(apiKey);
    if (m === null) return { ok: false, reason: "malformed", keyId: "" };
    const keyId = m[1] as string;
    const name = await this.#redis.hget(this.#keys, keyId);
    const json = name === null ? null : await this.#redis.hget(this.#accounts, name);
    if (json === null) return { ok: false, reason: "unknown", keyId };
    const account = JSON.parse(json) as ServiceAccountRecord;
    const presented = Buffer.from(sha256Hex(apiKey), "hex");
    const stored = Buffer.from(account.keySha256, "hex");
    if (account.keyId !== keyId || presented.length !== stored.length || !timingSafeEqual(presented, stored)) {
      return { ok: false, reason: "mismatch", keyId };
    }
    return { ok: true, account };
  }
}
