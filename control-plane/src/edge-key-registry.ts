import { createPublicKey } from "node:crypto";
import { edgeKeyId } from "@tollgate/sdk";
import type { Redis } from "ioredis";

/** One registered edge signing key (public part only). */
export interface EdgeKeyRecord {
  edgeName: string;
  keyId: string;
  /** Ed25519 public key, SPKI PEM. */
  publicKeyPem: string;
  registerTimeMs: number;
}

/** A registration the registry refuses; `code` says why. */
export class EdgeKeyError extends Error {
  override readonly name = "EdgeKeyError";
  constructor(
    readonly code: "ERR_EDGE_NAME" | "ERR_EDGE_KEY",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Edge names: what an edge may call itself (`tollgate.edge` in its events). */
export const EDGE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Edges' Ed25519 public keys in Redis: one hash `<prefix>edge-keys`, field `<edge>\n<keyId>`,
 * value the JSON {@link EdgeKeyRecord}. An edge may have several keys (rotation); a key is
 * never replaced, so checkpoints signed with an older key still verify.
 */
export class EdgeKeyRegistry {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}edge-keys`;
  }

  /**
   * Registers a public key for an edge. Throws {@link EdgeKeyError} for a bad edge name
   * (`ERR_EDGE_NAME`) or a key that is not an Ed25519 SPKI PEM (`ERR_EDGE_KEY`).
   */
  async register(edgeName: string, publicKeyPem: string): Promise<EdgeKeyRecord> {
    if (!EDGE_NAME_PATTERN.test(edgeName)) {
      throw new EdgeKeyError("ERR_EDGE_NAME", `edge name must match ${EDGE_NAME_PATTERN.source}`);
    }
    let pem: string;
    try {
      const key = createPublicKey(publicKeyPem);
      if (key.asymmetricKeyType !== "ed25519") throw new Error(`key type ${key.asymmetricKeyType}`);
      pem = key.export({ type: "spki", format: "pem" }).toString();
    } catch (cause) {
      throw new EdgeKeyError("ERR_EDGE_KEY", "public_key_pem is not an Ed25519 public key (SPKI PEM)", { cause });
    }
    const record: EdgeKeyRecord = { edgeName, keyId: edgeKeyId(pem), publicKeyPem: pem, registerTimeMs: Date.now() };
    // HSETNX: the first registration's time stays; re-registering the same key is a no-op.
    await this.#redis.hsetnx(this.#key, `${edgeName}\n${record.keyId}`, JSON.stringify(record));
    return (await this.get(edgeName, record.keyId)) ?? record;
  }

  /** One key, or undefined. */
  async get(edgeName: string, keyId: string): Promise<EdgeKeyRecord | undefined> {
    const raw = await this.#redis.hget(this.#key, `${edgeName}\n${keyId}`);
    return raw === null ? undefined : (JSON.parse(raw) as EdgeKeyRecord);
  }

  /** Every registered key, sorted by edge then registration time. */
  async list(): Promise<EdgeKeyRecord[]> {
    const all = await this.#redis.hvals(this.#key);
    return all
      .map((raw) => JSON.parse(raw) as EdgeKeyRecord)
      .sort((a, b) => a.edgeName.localeCompare(b.edgeName) || a.registerTimeMs - b.registerTimeMs);
  }
}
