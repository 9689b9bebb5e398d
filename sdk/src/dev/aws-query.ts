import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

/**
 * SHA-256 for `@smithy/signature-v4`, on node:crypto (HMAC when constructed with a secret),
 * so the signer needs no extra crypto package.
 */
class NodeSha256 {
  readonly #hash: Hash | Hmac;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(secret));
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBuffer(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}

function toBuffer(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** Credentials for {@link referenceSigV4Signer}. */
export interface ReferenceSigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * A SigV4 signer from `@smithy/signature-v4`, configured as the AWS SDKs sign for `service`: the
 * path signed as sent for S3 and encoded once more for every other service, and no
 * `x-amz-content-sha256` added. It is the independent implementation Tollgate's own SigV4 code
 * is tested against, and what the dev tools sign with.
 */
export function referenceSigV4Signer(
  credentials: ReferenceSigV4Credentials,
  service: string,
  region: string,
): SignatureV4 {
  return new SignatureV4({
    credentials,
    service,
    region,
    sha256: NodeSha256,
    uriEscapePath: service !== "s3",
    applyChecksum: false,
  });
}

/** Options for {@link signedAwsQuery}. */
export interface SignedAwsQueryOptions {
  /** Endpoint URL, e.g. `http://127.0.0.1:5000`. */
  endpoint: string;
  /** SigV4 signing name, e.g. `iam` or `sts`. */
  service: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** awsQuery parameters, including `Action` and `Version`. */
  params: Record<string, string>;
  /** Request timeout in milliseconds (10000). */
  timeoutMs?: number;
}

/** Response of {@link signedAwsQuery}. */
export interface SignedAwsQueryResponse {
  status: number;
  body: string;
}

/** Sends one SigV4-signed awsQuery POST (the IAM/STS wire protocol) and returns the raw XML. */
export async function signedAwsQuery(options: SignedAwsQueryOptions): Promise<SignedAwsQueryResponse> {
  const url = new URL(options.endpoint);
  const body = new URLSearchParams(options.params).toString();
  const signer = referenceSigV4Signer(
    {
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
    },
    options.service,
    options.region,
  );
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === "" ? {} : { port: Number(url.port) }),
    path: "/",
    query: {},
    headers: {
      host: url.host,
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
    },
    body,
  });
  // fetch sets Host itself (to the same url.host that was signed).
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) {
    if (name.toLowerCase() !== "host") headers[name] = value;
  }
  const response = await fetch(new URL("/", url), {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  return { status: response.status, body: await response.text() };
}
