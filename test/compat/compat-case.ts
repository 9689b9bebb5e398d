/** Types of the compatibility matrix (the table itself is in cases.ts). */

/** The real clients the matrix drives. */
export const COMPAT_CLIENTS = ["sdk-js-v3", "aws-cli-v1", "aws-cli-v2", "boto3"] as const;
export type CompatClient = (typeof COMPAT_CLIENTS)[number];

/**
 * How a client reaches the edge. `endpoint`: `AWS_ENDPOINT_URL` / `--endpoint-url` / `endpoint` pointing at
 * the edge (plain HTTP). `proxy`: no endpoint override, AWS's own host names, `HTTPS_PROXY` = the edge's
 * CONNECT proxy, and the Tollgate CA (`$TOLLGATE_HOME/ca.pem`) trusted through `AWS_CA_BUNDLE` (botocore)
 * or the `ca` of the CONNECT agent (SDK v3, which ignores `HTTPS_PROXY`).
 */
export const COMPAT_MODES = ["endpoint", "proxy"] as const;
export type CompatMode = (typeof COMPAT_MODES)[number];

/**
 * Which upstream a row needs: the signature-verifying moto (the default, the real check that the edge
 * re-signs correctly), or a non-verifying one for moto's own verifier false alarms (SERVICES.md).
 */
export type CompatNeeds = "verifying-moto" | "non-verifying-moto";

/** JSON-ish input; strings may hold `{placeholder}`s; `{ $file: path }` stands for a file's bytes. */
export type CompatValue = string | number | boolean | null | CompatValue[] | { [key: string]: CompatValue };

/** AWS SDK for JavaScript v3: `new <client>Client(cfg).send(new <command>Command(input))`. */
export interface SdkCall {
  kind: "sdk";
  client: string;
  command: string;
  input: { [key: string]: CompatValue };
  /** Region to sign with (default us-east-1). */
  region?: string;
  /**
   * S3 addressing. "path" (default) sets forcePathStyle; "virtual" leaves the SDK's default and points it
   * at `http://localhost:<port>` so it sends `Host: <bucket>.localhost:<port>` (with an IP endpoint the
   * SDK silently falls back to path style).
   */
  addressing?: "path" | "virtual";
  /**
   * Send the string `Body` as a stream with a ContentLength: the SDK then uploads it as
   * `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (aws-chunked with an x-amz-checksum-crc32 trailer) instead of a
   * signed body hash.
   */
  bodyAsStream?: boolean;
}

/** `@aws-sdk/lib-storage` Upload (multipart with the SDK's default checksums). */
export interface SdkUploadCall {
  kind: "sdk-upload";
  bucket: string;
  key: string;
  /** Body size in bytes; the SDK's default 5 MiB part size applies. */
  size: number;
}

/** `@aws-sdk/s3-request-presigner` getSignedUrl, then the URL fetched with plain fetch. */
export interface SdkPresignCall {
  kind: "sdk-presign";
  method: "GET" | "PUT";
  bucket: string;
  key: string;
  /** Body for PUT. */
  body?: string;
}

/**
 * The aws CLI (v1 on PATH, v2 at /usr/bin/aws): argv after `aws`. `presignFetch` requests the URL the
 * command printed (for `aws s3 presign`).
 */
export interface CliCall {
  kind: "cli";
  args: string[];
  presignFetch?: { method: "GET" | "PUT"; body?: string };
  /** Run with a config file setting `s3.signature_version = s3v4` (CLI v1 presigns with SigV2 otherwise). */
  s3SigV4Config?: boolean;
}

/** boto3: `boto3.client(service).<method>(**params)` in test/compat/clients/boto3_driver.py. */
export interface Boto3Call {
  kind: "boto3";
  service: string;
  method: string;
  params: { [key: string]: CompatValue };
  region?: string;
  addressing_style?: "auto" | "path" | "virtual";
  /** botocore signature_version, e.g. "s3v4" (botocore presigns S3 with SigV2 by default). */
  signature_version?: string;
  /** The method returns a presigned URL; request it without further signing. */
  fetch?: { method: "GET" | "PUT"; body?: string };
}

export type CompatCall = SdkCall | SdkUploadCall | SdkPresignCall | CliCall | Boto3Call;

/** One row of the matrix: one client, one call, in one mode. */
export interface CompatCase {
  client: CompatClient;
  mode: CompatMode;
  service: string;
  operation: string;
  call: CompatCall;
  /** Expected audit events: one eventName (exactly one event), or counts for multi-request calls. */
  events: string | Record<string, number>;
  /** ARNs every event of the row must list among its resources (placeholders allowed). */
  resources?: string[];
  /** Expected errorCode of the events (default: none). */
  errorCode?: string;
  /**
   * The edge must refuse the call with this AWS error code: the client fails with it (its error text also
   * holds `output`), and every event is a DENY with this errorCode, under the principal the credential claims.
   */
  refusedWith?: string;
  /** Text the client's output must contain (placeholders allowed). */
  output?: string;
  needs: CompatNeeds;
  /** Why the current edge (or client) cannot pass this row yet; such rows are listed but not asserted. */
  pending?: string;
  /**
   * Pending reasons for some clients and/or modes only, for rows shared by several clients (the aws CLI v1
   * and v2 rows) or modes: keys `<client>`, `<mode>` or `<client>/<mode>` (the most specific wins).
   */
  pendingFor?: Partial<Record<CompatClient | CompatMode | `${CompatClient}/${CompatMode}`, string>>;
}

/** The edge's CONNECT proxy, for rows in proxy mode. */
export interface CompatProxy {
  /** `HTTPS_PROXY` value, `http://127.0.0.1:<port>`. */
  url: string;
  /** `$TOLLGATE_HOME/ca.pem`, the Tollgate CA certificate file. */
  caFile: string;
  /** Its PEM text. */
  caPem: string;
}

/** What a client driver needs to run one row. */
export interface CompatContext {
  mode: CompatMode;
  /** The edge's endpoint-mode URL (used in endpoint mode only). */
  edgeUrl: string;
  proxy: CompatProxy;
  credential: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
  /** Placeholder values (see cases.ts). */
  vars: Record<string, string>;
}

/** What a row's call produced: the client's output, or its error. */
export type CompatOutcome = { ok: true; output: string } | { ok: false; error: string };

/** Replaces `{name}` for every known name in strings, recursively. */
export function fillPlaceholders<T extends CompatValue>(value: T, vars: Record<string, string>): T {
  if (typeof value === "string") {
    return value.replace(/\{(\w+)\}/g, (whole, name: string) => vars[name] ?? whole) as T;
  }
  if (Array.isArray(value)) return value.map((v) => fillPlaceholders(v, vars)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillPlaceholders(v, vars)])) as T;
  }
  return value;
}

/** Error text of anything thrown by a client. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return `${error.name}${status === undefined ? "" : ` (HTTP ${status})`}: ${error.message}`.slice(0, 400);
  }
  return String(error).slice(0, 400);
}
