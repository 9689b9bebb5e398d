import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Verifies AWS Signature Version 4 (header form) on a request as it arrived on the wire.
 *
 * The canonical request is rebuilt from the raw path, raw query and the raw header values the
 * client listed in `SignedHeaders`, so any byte changed in transit (or by a forger without the
 * secret) changes the signature. S3 signs the path as sent; every other service signs the
 * normalised, URI-encoded-again path (AWS's "double encoding").
 */

/** Parsed `Authorization: AWS4-HMAC-SHA256 ...` header. */
export interface SigV4Authorization {
  accessKeyId: string;
  /** yyyymmdd from the credential scope. */
  scopeDate: string;
  region: string;
  /** Signing name, e.g. "s3", "dynamodb". */
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Why a request's authentication could not be read or checked. */
export type SigV4ProblemCode = "missing" | "malformed" | "skewed" | "mismatch";

/** A failed verification, with a message safe to return to the caller. */
export class SigV4Problem extends Error {
  override readonly name = "SigV4Problem";
  constructor(
    readonly code: SigV4ProblemCode,
    message: string,
  ) {
    super(message);
  }
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9;._-]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

/** Parses the Authorization header; throws {@link SigV4Problem} `missing` or `malformed`. */
export function parseSigV4Authorization(header: string | undefined): SigV4Authorization {
  if (header === undefined || header === "")
    throw new SigV4Problem("missing", "Request is missing Authentication Token");
  const m = AUTH_RE.exec(header);
  if (m === null) {
    throw new SigV4Problem(
      "malformed",
      "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters for AWS4-HMAC-SHA256.",
    );
  }
  const [, accessKeyId, scopeDate, region, service, signedHeaders, signature] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const headers = signedHeaders.split(";");
  if (!headers.includes("host")) {
    throw new SigV4Problem("malformed", "'Host' must be a signed header.");
  }
  return { accessKeyId, scopeDate, region, service, signedHeaders: headers, signature };
}

/** The parts of the received request that the signature covers. */
export interface SignedRequestParts {
  method: string;
  /** Path as received, percent-encoding intact, without the query. */
  rawPath: string;
  /** Query string as received, without the leading "?". */
  rawQuery: string;
  /** Node's `rawHeaders` (name, value, name, value, ...). */
  rawHeaders: readonly string[];
  /** Hex SHA-256 of the payload, or the literal from `x-amz-content-sha256`. */
  payloadHash: string;
  /** `x-amz-date` value (yyyymmddThhmmssZ). */
  amzDate: string;
}

/** Options for {@link verifySigV4}. */
export interface VerifySigV4Options {
  /** Allowed clock difference; AWS allows 5 min (15 for S3). */
  maxSkewMs: number;
  /** Current time in ms, for tests. */
  nowMs?: number;
}

/** RFC 3986 encoding as SigV4 specifies (unreserved: A-Z a-z 0-9 - _ . ~). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Decodes a raw query string into ordered pairs. `+` is kept literally, as SigV4 does. */
export function parseRawQuery(rawQuery: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (rawQuery === "") return pairs;
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq === -1 ? part : part.slice(0, eq);
    const v = eq === -1 ? "" : part.slice(eq + 1);
    pairs.push([safeDecode(k), safeDecode(v)]);
  }
  return pairs;
}

function canonicalQuery(rawQuery: string): string {
  const encoded = parseRawQuery(rawQuery)
    .filter(([k]) => k !== "X-Amz-Signature")
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return encoded.map(([k, v]) => `${k}=${v}`).join("&");
}

function canonicalPath(rawPath: string, service: string): string {
  if (service === "s3") return rawPath === "" ? "/" : rawPath;
  const segments: string[] = [];
  for (const seg of rawPath.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") segments.pop();
    else segments.push(seg);
  }
  const normalized = `/${segments.join("/")}${segments.length > 0 && rawPath.endsWith("/") ? "/" : ""}`;
  return uriEncode(normalized).replace(/%2F/g, "/");
}

function canonicalHeaders(rawHeaders: readonly string[], names: readonly string[]): string | undefined {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const list = values.get(name);
    const value = (rawHeaders[i + 1] as string).trim().replace(/\s+/g, " ");
    if (list === undefined) values.set(name, [value]);
    else list.push(value);
  }
  let out = "";
  for (const name of names) {
    const list = values.get(name);
    if (list === undefined) return undefined;
    out += `${name}:${list.join(",")}\n`;
  }
  return out;
}

/** Parses `yyyymmddThhmmssZ` to epoch ms, or NaN. */
export function parseAmzDate(amzDate: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (m === null) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Caches derived signing keys: one HMAC chain per key, day, region and service. */
export class SigningKeyCache {
  readonly #keys = new Map<string, Buffer>();
  constructor(private readonly maxEntries = 10_000) {}

  get(secret: string, date: string, region: string, service: string): Buffer {
    const id = `${date}/${region}/${service}/${secret}`;
    let key = this.#keys.get(id);
    if (key === undefined) {
      const kDate = createHmac("sha256", `AWS4${secret}`).update(date).digest();
      const kRegion = createHmac("sha256", kDate).update(region).digest();
      const kService = createHmac("sha256", kRegion).update(service).digest();
      key = createHmac("sha256", kService).update("aws4_request").digest();
      if (this.#keys.size >= this.maxEntries) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }
}

/**
 * Checks `auth.signature` against the request. Throws {@link SigV4Problem} `skewed` when the
 * request time is outside the allowed window and `mismatch` when the signature differs.
 */
export function verifySigV4(
  auth: SigV4Authorization,
  parts: SignedRequestParts,
  secretAccessKey: string,
  keys: SigningKeyCache,
  options: VerifySigV4Options,
): void {
  const requestMs = parseAmzDate(parts.amzDate);
  if (Number.isNaN(requestMs) || parts.amzDate.slice(0, 8) !== auth.scopeDate) {
    throw new SigV4Problem(
      "malformed",
      "X-Amz-Date is missing, malformed or does not match the credential scope date.",
    );
  }
  const nowMs = options.nowMs ?? Date.now();
  if (Math.abs(nowMs - requestMs) > options.maxSkewMs) {
    throw new SigV4Problem(
      "skewed",
      `Signature expired or not yet valid: ${parts.amzDate} is now earlier or later than ${new Date(nowMs).toISOString()} by more than the allowed ${Math.round(options.maxSkewMs / 60000)} minutes.`,
    );
  }
  const headers = canonicalHeaders(parts.rawHeaders, auth.signedHeaders);
  if (headers === undefined) {
    throw new SigV4Problem("mismatch", "A header listed in SignedHeaders is missing from the request.");
  }
  const canonicalRequest = [
    parts.method,
    canonicalPath(parts.rawPath, auth.service),
    canonicalQuery(parts.rawQuery),
    headers,
    auth.signedHeaders.join(";"),
    parts.payloadHash,
  ].join("\n");
  const scope = `${auth.scopeDate}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${parts.amzDate}\n${scope}\n${createHash("sha256").update(canonicalRequest).digest("hex")}`;
  const expected = createHmac("sha256", keys.get(secretAccessKey, auth.scopeDate, auth.region, auth.service))
    .update(stringToSign)
    .digest();
  const given = Buffer.from(auth.signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SigV4Problem(
      "mismatch",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
  }
}
