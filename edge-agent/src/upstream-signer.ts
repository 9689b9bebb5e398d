import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Checksum, SourceData } from "@smithy/types";

/** SHA-256 on node's crypto for `@smithy/signature-v4` (the JS fallback is much slower). */
class NodeSha256 implements Checksum {
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  readonly #secret: SourceData | undefined;

  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = NodeSha256.#create(secret);
  }

  static #create(secret?: SourceData): ReturnType<typeof createHash> | ReturnType<typeof createHmac> {
    return secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(secret));
  }

  update(data: Uint8Array): void {
    this.#hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#hash.digest());
  }

  reset(): void {
    this.#hash = NodeSha256.#create(this.#secret);
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** Upstream AWS credentials of a connection. */
export interface UpstreamCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Creates the SigV4 signer that re-signs requests for one upstream service and region. */
export function createUpstreamSigner(credentials: UpstreamCredentials, service: string, region: string): SignatureV4 {
  return new SignatureV4({
    credentials,
    service,
    region,
    sha256: NodeSha256,
    // S3 signs the path as sent; every other service signs it encoded once more.
    uriEscapePath: service !== "s3",
    // Keep whatever x-amz-content-sha256 the client sent; never add one.
    applyChecksum: false,
  });
}

/**
 * Upstream signers are stateless, so one per connection credentials, service and region is
 * reused across requests. Keyed by the credentials object: a configuration refresh brings new
 * objects, and signers of replaced credentials are dropped with them.
 */
export class UpstreamSignerCache {
  readonly #byCredentials = new WeakMap<UpstreamCredentials, Map<string, SignatureV4>>();

  /** The signer for these credentials, service and region, created on first use. */
  get(credentials: UpstreamCredentials, service: string, region: string): SignatureV4 {
    let signers = this.#byCredentials.get(credentials);
    if (signers === undefined) {
      signers = new Map();
      this.#byCredentials.set(credentials, signers);
    }
    const id = `${service}/${region}`;
    let signer = signers.get(id);
    if (signer === undefined) {
      signer = createUpstreamSigner(credentials, service, region);
      signers.set(id, signer);
    }
    return signer;
  }
}
