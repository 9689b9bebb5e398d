import type { Redis } from "ioredis";

/** Trust rule and service account names: `[a-z0-9][a-z0-9-]{0,62}`. */
export const WORKLOAD_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A test on one claim: a glob, or (when `glob` is empty) an anchored regular expression. */
export interface ClaimConditionRecord {
  claim: string;
  glob: string;
  regex: string;
}

/** A trust rule as stored (see `TrustRule` in workload_service.proto). */
export interface TrustRuleRecord {
  connection: string;
  name: string;
  issuer: string;
  /** Empty = discovered from the issuer. */
  jwksUrl: string;
  audiences: string[];
  /** Empty = any subject. */
  subjectPattern: string;
  conditions: ClaimConditionRecord[];
  principalTemplate: string;
  groupsClaim: string;
  maxTtlSec: number;
  createTimeMs: number;
}

/**
 * Trust rules in Redis: one hash `<prefix>trust-rules`, field `<connection>/<name>` → JSON.
 * Few rules exist and each exchange reads one connection's, so a single hash is enough.
 */
export class TrustRuleStore {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}trust-rules`;
  }

  /** Stores `rule`; false when it exists and `replace` is not set. */
  async put(rule: TrustRuleRecord, replace: boolean): Promise<boolean> {
    const field = `${rule.connection}/${rule.name}`;
    const json = JSON.stringify(rule);
    if (replace) {
      await this.#redis.hset(this.#key, field, json);
      return true;
    }
    return (await this.#redis.hsetnx(this.#key, field, json)) === 1;
  }

  /** Every rule, or one connection's, sorted by connection and name. */
  async list(connection?: string): Promise<TrustRuleRecord[]> {
    const all = await this.#redis.hgetall(this.#key);
    const rules: TrustRuleRecord[] = [];
    for (const [field, json] of Object.entries(all)) {
      if (connection !== undefined && !field.startsWith(`${connection}/`)) continue;
      rules.push(JSON.parse(json) as TrustRuleRecord);
    }
    return rules.sort((a, b) =>
      a.connection === b.connection ? a.name.localeCompare(b.name) : a.connection.localeCompare(b.connection),
    );
  }

  /** True when a rule was deleted. */
  async delete(connection: string, name: string): Promise<boolean> {
    return (await this.#redis.hdel(this.#key, `${connection}/${name}`)) === 1;
  }
}
