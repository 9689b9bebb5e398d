// SigV4 signing for the benchmark clients: whole requests through @smithy/signature-v4 (what the
// AWS SDK uses), and the aws-chunked chunk signatures, which the SDK for JavaScript never produces.
import { createHash, createHmac, randomUUID } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

/** Hex SHA-256 of the empty string (the payload hash of a GET). */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** SHA-256 on node:crypto for @smithy/signature-v4. */
class NodeSha256 {
  #secret;
  #hash;
  constructor(secret) {
    this.#secret = secret;
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", secret);
  }
  update(data) {
    this.#hash.update(data);
  }
  digest() {
    return Promise.resolve(this.#hash.digest());
  }
  reset() {
    this.#hash = this.#secret === undefined ? createHash("sha256") : createHmac("sha256", this.#secret);
  }
}

/**
 * Signs one request as an AWS SDK would. `headers` must already hold x-amz-content-sha256 for S3.
 * Returns the signed headers (lower-case names) and the signature (the seed of signed chunks).
 */
export async function signRequest({
  credential,
  service,
  region,
  method,
  host,
  path,
  query = {},
  headers,
  body,
  date,
}) {
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: credential.accessKeyId,
      secretAccessKey: credential.secretAccessKey,
      sessionToken: credential.sessionToken,
    },
    service,
    region,
    sha256: NodeSha256,
    uriEscapePath: service !== "s3",
    applyChecksum: false,
  });
  const [hostname, port] = host.split(":");
  const signed = await signer.sign(
    {
      method,
      protocol: "http:",
      hostname,
      port: Number(port),
      path,
      query,
      headers: { host, ...headers },
      ...(body !== undefined ? { body } : {}),
    },
    { signingDate: date ?? new Date() },
  );
  const auth = signed.headers.authorization;
  const signature = /Signature=([0-9a-f]{64})/.exec(auth)?.[1];
  return { headers: signed.headers, signature, amzDate: signed.headers["x-amz-date"] };
}

/** The headers an SDK adds to every call (signed, distinct per call). */
export function sdkHeaders() {
  return {
    "amz-sdk-invocation-id": randomUUID(),
    "amz-sdk-request": "attempt=1; max=3",
  };
}

/** Orders headers with Host first and renders them as raw HTTP/1.1 header lines. */
export function rawHeaderLines(headers) {
  const lines = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k === "host") lines.unshift(`Host: ${v}`);
    else lines.push(`${k}: ${v}`);
  }
  return lines.join("\r\n");
}

/**
 * Chunk signer for STREAMING-AWS4-HMAC-SHA256-PAYLOAD: each chunk's signature chains from the
 * previous one, starting at the request's own signature (the seed).
 */
export class ChunkSigner {
  #key;
  #prefix;
  #previous;

  constructor({ credential, service, region, amzDate, seedSignature }) {
    const shortDate = amzDate.slice(0, 8);
    const kDate = createHmac("sha256", `AWS4${credential.secretAccessKey}`).update(shortDate).digest();
    const kRegion = createHmac("sha256", kDate).update(region).digest();
    const kService = createHmac("sha256", kRegion).update(service).digest();
    this.#key = createHmac("sha256", kService).update("aws4_request").digest();
    this.#prefix = `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${shortDate}/${region}/${service}/aws4_request\n`;
    this.#previous = seedSignature;
  }

  /** Signature of the next chunk, given the hex SHA-256 of its data. */
  next(chunkSha256Hex) {
    const sig = createHmac("sha256", this.#key)
      .update(`${this.#prefix}${this.#previous}\n${EMPTY_SHA256}\n${chunkSha256Hex}`)
      .digest("hex");
    this.#previous = sig;
    return sig;
  }
}
