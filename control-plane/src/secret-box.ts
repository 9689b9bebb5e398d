import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { TollgateError } from "@tollgate/sdk";

/**
 * Encrypts upstream secrets at rest with AES-256-GCM under the control plane's data key.
 * Sealed form: `v1.<base64url(iv ‖ ciphertext ‖ tag)>`. The associated data binds a ciphertext
 * to the record it belongs to (e.g. the connection name and field), so sealed values cannot be
 * swapped between records.
 */
export class SecretBox {
  readonly #key: Buffer;

  /** @param key 32-byte AES-256 key. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new TollgateError("ERR_CONFIG", "data key must be 32 bytes");
    this.#key = Buffer.from(key);
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return `v1.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url")}`;
  }

  open(sealed: string, associatedData: string): string {
    if (!sealed.startsWith("v1.")) throw new TollgateError("ERR_CONFIG", "unknown sealed secret format");
    const raw = Buffer.from(sealed.slice(3), "base64url");
    if (raw.length < 28) throw new TollgateError("ERR_CONFIG", "sealed secret too short");
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(associatedData, "utf8"));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
    } catch (cause) {
      throw new TollgateError("ERR_CONFIG", "sealed secret failed authentication (wrong data key?)", { cause });
    }
  }
}
