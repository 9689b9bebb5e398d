import { createHash, createPublicKey, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { EDGE_NAME_PATTERN, EdgeKeyError, type EdgeKeyRegistry } from "./edge-key-registry.js";

/** Default lifetime of an enrollment token, seconds. */
export const DEFAULT_ENROLLMENT_TTL_SEC = 3600;
/** Shortest enrollment token lifetime, seconds. */
export const MIN_ENROLLMENT_TTL_SEC = 60;
/** Longest enrollment token lifetime (7 days), seconds. */
export const MAX_ENROLLMENT_TTL_SEC = 7 * 24 * 3600;
/** An edge whose last heartbeat is older than this is "stale". */
export const DEFAULT_EDGE_STALE_AFTER_MS = 30_000;

/** Label keys and values: what `--label k=v` accepts. */
export const EDGE_LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
export const EDGE_LABEL_VALUE_PATTERN = /^[A-Za-z0-9._:/@+=-]{0,128}$/;
const MAX_LABELS = 32;

/** An enrolled edge as stored in Redis. */
export interface EdgeRecord {
  name: string;
  labels: Record<string, string>;
  /** Keys it enrolled with and that are still accepted. */
  keyIds: string[];
  /** Keys refused for good (revoked); re-enrolling with one of them fails. */
  revokedKeyIds: string[];
  enrollTimeMs: number;
  /** 0 = not revoked. */
  revokeTimeMs: number;
}

/** An enrolled edge with its liveness. */
export interface EdgeStatus extends EdgeRecord {
  lastHeartbeatMs: number;
  status: "healthy" | "stale" | "revoked";
}

/** What the registry refuses; `code` says why. */
export class EdgeEnrollmentError extends Error {
  override readonly name = "EdgeEnrollmentError";
  constructor(
    readonly code:
      | "ERR_EDGE_NAME"
      | "ERR_EDGE_LABEL"
      | "ERR_ENROLLMENT_TOKEN"
      | "ERR_EDGE_NAME_MISMATCH"
      | "ERR_EDGE_KEY_REVOKED"
      | "ERR_EDGE_NOT_FOUND",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface StoredEnrollmentToken {
  edgeName: string;
  labels: Record<string, string>;
  createTimeMs: number;
  expireTimeMs: number;
}

/** Checks labels; throws {@link EdgeEnrollmentError} `ERR_EDGE_LABEL`. */
export function checkEdgeLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw new EdgeEnrollmentError("ERR_EDGE_LABEL", `at most ${MAX_LABELS} labels`);
  for (const [k, v] of entries) {
    if (!EDGE_LABEL_KEY_PATTERN.test(k)) {
      throw new EdgeEnrollmentError("ERR_EDGE_LABEL", `label key must match ${EDGE_LABEL_KEY_PATTERN.source}`);
    }
    if (!EDGE_LABEL_VALUE_PATTERN.test(v)) {
      throw new EdgeEnrollmentError("ERR_EDGE_LABEL", `label value must match ${EDGE_LABEL_VALUE_PATTERN.source}`);
    }
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Enrolled edges in Redis:
 * - `<prefix>edge-enroll:<sha256 hex of token>`: a one-time enrollment token (JSON, expiring
 *   with the token); consumed with GETDEL so a second use fails;
 * - `<prefix>edges`: hash edge name → JSON {@link EdgeRecord};
 * - `<prefix>edge-heartbeats`: hash edge name → Unix ms of its last signed config poll.
 * The enrolled key is also registered in the {@link EdgeKeyRegistry}, so the edge's audit
 * checkpoints verify against the same key.
 */
export class EdgeRegistry {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #keys: EdgeKeyRegistry;
  readonly #staleAfterMs: number;

  constructor(redis: Redis, prefix: string, keys: EdgeKeyRegistry, staleAfterMs = DEFAULT_EDGE_STALE_AFTER_MS) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#keys = keys;
    this.#staleAfterMs = staleAfterMs;
  }

  #tokenKey(token: string): string {
    return `${this.#prefix}edge-enroll:${createHash("sha256").update(token, "utf8").digest("hex")}`;
  }

  get #edgesKey(): string {
    return `${this.#prefix}edges`;
  }

  get #heartbeatsKey(): string {
    return `${this.#prefix}edge-heartbeats`;
  }

  /** Creates a one-time enrollment token; only its hash is stored. */
  async createEnrollmentToken(
    edgeName: string,
    labels: Record<string, string>,
    ttlSec: number,
    nowMs = Date.now(),
  ): Promise<{ token: string; edgeName: string; expireTimeMs: number }> {
    if (!EDGE_NAME_PATTERN.test(edgeName)) {
      throw new EdgeEnrollmentError("ERR_EDGE_NAME", `edge name must match ${EDGE_NAME_PATTERN.source}`);
    }
    const stored: StoredEnrollmentToken = {
      edgeName,
      labels: checkEdgeLabels(labels),
      createTimeMs: nowMs,
      expireTimeMs: nowMs + ttlSec * 1000,
    };
    const token = `tgn_${randomBytes(32).toString("base64url")}`;
    await this.#redis.set(this.#tokenKey(token), JSON.stringify(stored), "PX", ttlSec * 1000);
    return { token, edgeName, expireTimeMs: stored.expireTimeMs };
  }

  /**
   * Consumes `token` (atomically: a second use fails) and enrolls the edge with `publicKeyPem`.
   * `edgeName` may be empty; otherwise it must equal the token's. Re-enrolling an edge (a new
   * token for the same name) adds the key and lifts a revocation, but never accepts a key that
   * was revoked.
   */
  async enroll(token: string, publicKeyPem: string, edgeName: string, nowMs = Date.now()): Promise<EdgeRecord> {
    // A bad key must not burn the token: check it before consuming.
    try {
      if (createPublicKey(publicKeyPem).asymmetricKeyType !== "ed25519") throw new Error("not Ed25519");
    } catch (cause) {
      throw new EdgeKeyError("ERR_EDGE_KEY", "public_key_pem is not an Ed25519 public key (SPKI PEM)", { cause });
    }
    const raw = token === "" ? null : await this.#redis.getdel(this.#tokenKey(token));
    if (raw === null) {
      throw new EdgeEnrollmentError("ERR_ENROLLMENT_TOKEN", "enrollment token is unknown, used or expired");
    }
    const t = JSON.parse(raw) as StoredEnrollmentToken;
    // Redis expires the key, but a clock between PX granularity and now: check anyway.
    if (t.expireTimeMs <= nowMs) {
      throw new EdgeEnrollmentError("ERR_ENROLLMENT_TOKEN", "enrollment token is unknown, used or expired");
    }
    if (edgeName !== "" && edgeName !== t.edgeName) {
      throw new EdgeEnrollmentError(
        "ERR_EDGE_NAME_MISMATCH",
        `the token was created for edge ${t.edgeName}, not ${edgeName}`,
      );
    }
    const existing = await this.get(t.edgeName);
    const key = await this.#keys.register(t.edgeName, publicKeyPem);
    if (existing?.revokedKeyIds.includes(key.keyId)) {
      throw new EdgeEnrollmentError("ERR_EDGE_KEY_REVOKED", "this key was revoked; enroll with a new key");
    }
    const record: EdgeRecord = {
      name: t.edgeName,
      labels: t.labels,
      keyIds: existing === undefined ? [key.keyId] : [...new Set([...existing.keyIds, key.keyId])],
      revokedKeyIds: existing?.revokedKeyIds ?? [],
      enrollTimeMs: existing?.enrollTimeMs ?? nowMs,
      revokeTimeMs: 0,
    };
    await this.#redis.hset(this.#edgesKey, t.edgeName, JSON.stringify(record));
    return record;
  }

  /** One enrolled edge, or undefined. */
  async get(name: string): Promise<EdgeRecord | undefined> {
    const raw = await this.#redis.hget(this.#edgesKey, name);
    return raw === null ? undefined : (JSON.parse(raw) as EdgeRecord);
  }

  /** Revokes every key of the edge; throws `ERR_EDGE_NOT_FOUND` for an unknown edge. */
  async revoke(name: string, nowMs = Date.now()): Promise<EdgeStatus> {
    const existing = await this.get(name);
    if (existing === undefined) throw new EdgeEnrollmentError("ERR_EDGE_NOT_FOUND", `edge ${name} is not enrolled`);
    const record: EdgeRecord = {
      ...existing,
      keyIds: [],
      revokedKeyIds: [...new Set([...existing.revokedKeyIds, ...existing.keyIds])],
      revokeTimeMs: existing.revokeTimeMs || nowMs,
    };
    await this.#redis.hset(this.#edgesKey, name, JSON.stringify(record));
    const hb = await this.#redis.hget(this.#heartbeatsKey, name);
    return this.#withStatus(record, hb === null ? 0 : Number(hb), nowMs);
  }

  /** Records a heartbeat (a signed config poll) of an enrolled edge. */
  async heartbeat(name: string, nowMs = Date.now()): Promise<void> {
    await this.#redis.hset(this.#heartbeatsKey, name, String(nowMs));
  }

  /** Every enrolled edge with its heartbeat and status, sorted by name. */
  async list(nowMs = Date.now()): Promise<EdgeStatus[]> {
    const [edges, beats] = await Promise.all([
      this.#redis.hgetall(this.#edgesKey),
      this.#redis.hgetall(this.#heartbeatsKey),
    ]);
    return Object.values(edges)
      .map((raw) => {
        const rec = JSON.parse(raw) as EdgeRecord;
        return this.#withStatus(rec, Number(beats[rec.name] ?? 0), nowMs);
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #withStatus(rec: EdgeRecord, lastHeartbeatMs: number, nowMs: number): EdgeStatus {
    const status =
      rec.revokeTimeMs !== 0 ? "revoked" : nowMs - lastHeartbeatMs <= this.#staleAfterMs ? "healthy" : "stale";
    return { ...rec, lastHeartbeatMs, status };
  }

  /**
   * Reserves a signature for the replay window; false when it was seen before. Redis (not
   * process memory) so that several control-plane replicas share the cache.
   */
  async reserveSignature(signature: string, windowMs: number): Promise<boolean> {
    const id = createHash("sha256").update(signature, "utf8").digest("hex");
    const ok = await this.#redis.set(`${this.#prefix}edge-replay:${id}`, "1", "PX", windowMs, "NX");
    return ok === "OK";
  }
}
