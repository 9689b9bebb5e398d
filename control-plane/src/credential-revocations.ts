import type { Redis } from "ioredis";

/** One revocation in force. Exactly one of `credentialId` / `principal` is set. */
export interface RevocationRecord {
  credentialId?: string;
  principal?: string;
  revokeTimeMs: number;
  /** Enforced until then; dropped from the list afterwards. */
  untilMs: number;
}

// Atomically: keep the later `until` of an existing entry, bump the config revision.
const REVOKE_SCRIPT = `
local old = redis.call("HGET", KEYS[1], ARGV[1])
local rec = cjson.decode(ARGV[2])
if old then
  local o = cjson.decode(old)
  rec.revokeTimeMs = o.revokeTimeMs
  if o.untilMs > rec.untilMs then rec.untilMs = o.untilMs end
end
local out = cjson.encode(rec)
redis.call("HSET", KEYS[1], ARGV[1], out)
redis.call("INCR", KEYS[2])
return out
`;

/**
 * Revoked credentials and principals in Redis: hash `<prefix>revocations`, field
 * `credential:<id>` or `principal:<name>`, value the JSON {@link RevocationRecord}. Every
 * change increments the shared config revision `<prefix>revision`; the list edges get holds
 * only entries whose `untilMs` has not passed (expired ones are deleted when listed), so it
 * stays bounded by what is still enforceable.
 */
export class CredentialRevocations {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #revisionKey: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}revocations`;
    this.#revisionKey = `${prefix}revision`;
  }

  /** Revokes one credential until `untilMs` (its expiry). */
  revokeCredential(credentialId: string, untilMs: number, nowMs = Date.now()): Promise<RevocationRecord> {
    return this.#put(`credential:${credentialId}`, { credentialId, revokeTimeMs: nowMs, untilMs });
  }

  /** Revokes a principal (every credential, old and new) until `untilMs`. */
  revokePrincipal(principal: string, untilMs: number, nowMs = Date.now()): Promise<RevocationRecord> {
    return this.#put(`principal:${principal}`, { principal, revokeTimeMs: nowMs, untilMs });
  }

  async #put(field: string, rec: RevocationRecord): Promise<RevocationRecord> {
    const out = (await this.#redis.eval(
      REVOKE_SCRIPT,
      2,
      this.#key,
      this.#revisionKey,
      field,
      JSON.stringify(rec),
    )) as string;
    return JSON.parse(out) as RevocationRecord;
  }

  /** Revocations still in force; deletes the expired ones. */
  async list(nowMs = Date.now()): Promise<RevocationRecord[]> {
    const all = await this.#redis.hgetall(this.#key);
    const live: RevocationRecord[] = [];
    const expired: string[] = [];
    for (const [field, raw] of Object.entries(all)) {
      const rec = JSON.parse(raw) as RevocationRecord;
      if (rec.untilMs <= nowMs) expired.push(field);
      else live.push(rec);
    }
    if (expired.length > 0) await this.#redis.hdel(this.#key, ...expired);
    return live.sort((a, b) => a.revokeTimeMs - b.revokeTimeMs);
  }

  /** The principal's revocation in force, if any. */
  async principal(principal: string, nowMs = Date.now()): Promise<RevocationRecord | undefined> {
    const raw = await this.#redis.hget(this.#key, `principal:${principal}`);
    if (raw === null) return undefined;
    const rec = JSON.parse(raw) as RevocationRecord;
    return rec.untilMs > nowMs ? rec : undefined;
  }
}
