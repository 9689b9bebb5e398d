import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Verifies AWS Signature Version 4 on a request as it arrived on the wire, in header form
 * (`Authorization`) and query form (presigned URLs, `X-Amz-Signature`).
 *
 * The canonical request is rebuilt from the raw path, raw query and the raw header values the
 * client listed in `SignedHeaders`, so any byte changed in transit (or by a forger without the
 * secret) changes the signature. S3 signs the path as sent; every other service signs the
 * normalised, URI-encoded-again path (AWS's "double encoding").
 */

/** Parsed `Authorization: AWS4-HMAC-SHA256 ...` header or presigned-URL query. */
export interface SigV4Authorization {
  /** Where the signature came from: the `Authorization` header or the query (presigned URL). */
  form: "header" | "query";
  accessKeyId: string;
  /** yyyymmdd from the credential scope. */
  scopeDate: string;
  region: string;
  /** Signing name, e.g. "s3", "dynamodb". */
  service: string;
  signedHeaders: string[];
  signature: string;
  /** Query form only: `X-Amz-Date` (header form reads the `x-amz-date` header). */
  amzDate?: string;
  /** Query form only: `X-Amz-Expires`, seconds the URL is valid after `amzDate` (1..604800). */
  expiresSec?: number;
  /** Query form only: `X-Amz-Security-Token`. */
  securityToken?: string;
}

/** Query parameters that carry a presigned URL's authentication (never forwarded upstream). */
export const PRESIGN_QUERY_PARAMS: ReadonlySet<string> = new Set([
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Date",
  "X-Amz-Expires",
  "X-Amz-SignedHeaders",
  "X-Amz-Signature",
  "X-Amz-Security-Token",
]);

/** Longest validity of a presigned URL AWS accepts: 7 days. */
export const MAX_PRESIGN_EXPIRES_SEC = 604_800;

/**
 * Why a request's authentication could not be read or checked. `unsupported`: signed with a mechanism
 * other than SigV4 (S3's deprecated SigV2), refused like S3 does in SigV4-only regions.
 */
export type SigV4ProblemCode = "missing" | "malformed" | "skewed" | "expired" | "mismatch" | "unsupported";

/** What an unsupported (SigV2) signature claims: enough to classify the call and name the claimed caller. */
export interface LegacySignatureClaim {
  /** SigV2 is S3's (`Authorization: AWS <key>:<sig>`, or `AWSAccessKeyId=&Signature=&Expires=` presigned). */
  service: "s3";
  accessKeyId: string;
  /** `x-amz-security-token` from the query (presigned form), if any. */
  securityToken?: string;
}

/** A failed verification, with a message safe to return to the caller. */
export class SigV4Problem extends Error {
  override readonly name = "SigV4Problem";
  constructor(
    readonly code: SigV4ProblemCode,
    message: string,
    /** For `unsupported`: what the legacy signature claims. */
    readonly legacy?: LegacySignatureClaim,
  ) {
    super(message);
  }
}

/** S3's answer to SigV2 where only SigV4 is accepted (HTTP 400 InvalidRequest). */
const SIGV2_MESSAGE = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";
const SIGV2_AUTH_RE = /^AWS ([^:\s]+):\S+$/;

const AUTH_RE =
  /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9;._-]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

/** Parses the Authorization header; throws {@link SigV4Problem} `missing` or `malformed`. */
export function parseSigV4Authorization(header: string | undefined): SigV4Authorization {
  if (header === undefined || header === "")
    throw new SigV4Problem("missing", "Request is missing Authentication Token");
  const v2 = header.startsWith("AWS ") ? SIGV2_AUTH_RE.exec(header) : null;
  if (v2 !== null)
    throw new SigV4Problem("unsupported", SIGV2_MESSAGE, { service: "s3", accessKeyId: v2[1] as string });
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
  return { form: "header", accessKeyId, scopeDate, region, service, signedHeaders: headers, signature };
}

const CREDENTIAL_RE = /^([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/aws4_request$/;

/**
 * Reads presigned-URL authentication from a raw query string. Returns `undefined` when the
 * query carries none (no `X-Amz-Algorithm`, `X-Amz-Credential` or `X-Amz-Signature`); throws
 * {@link SigV4Problem} `malformed` when it carries some but not all of it, or bad values.
 */
export function parseSigV4Query(rawQuery: string): SigV4Authorization | undefined {
  if (rawQuery.includes("AWSAccessKeyId=") && !rawQuery.includes("X-Amz-")) throwIfSigV2Query(rawQuery);
  if (!rawQuery.includes("X-Amz-")) return undefined;
  const p = new Map<string, string>();
  for (const [k, v] of parseRawQuery(rawQuery)) if (PRESIGN_QUERY_PARAMS.has(k) && !p.has(k)) p.set(k, v);
  if (!p.has("X-Amz-Algorithm") && !p.has("X-Amz-Credential") && !p.has("X-Amz-Signature")) return undefined;
  const malformed = (what: string): never => {
    throw new SigV4Problem("malformed", what);
  };
  if (p.get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") {
    malformed('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  }
  for (const k of ["X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"]) {
    if (!p.has(k)) {
      malformed(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
      );
    }
  }
  const cred = CREDENTIAL_RE.exec(p.get("X-Amz-Credential") as string);
  if (cred === null) malformed("Error parsing the X-Amz-Credential parameter.");
  const [, accessKeyId, scopeDate, region, service] = cred as unknown as [string, string, string, string, string];
  const expiresText = p.get("X-Amz-Expires") as string;
  const expiresSec = /^\d{1,7}$/.test(expiresText) ? Number(expiresText) : Number.NaN;
  if (!(expiresSec >= 1)) malformed("X-Amz-Expires must be a positive integer number of seconds.");
  if (expiresSec > MAX_PRESIGN_EXPIRES_SEC) {
    malformed("X-Amz-Expires must be less than a week (in seconds) that is; 604800");
  }
  const signature = (p.get("X-Amz-Signature") as string).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(signature)) malformed("X-Amz-Signature must be 64 hexadecimal characters.");
  const signedHeaders = (p.get("X-Amz-SignedHeaders") as string).split(";");
  if (!signedHeaders.includes("host") || signedHeaders.some((h) => !/^[a-z0-9._-]+$/.test(h))) {
    malformed("X-Amz-SignedHeaders must name the host header and only lower-case header names.");
  }
  const token = p.get("X-Amz-Security-Token");
  return {
    form: "query",
    accessKeyId,
    scopeDate,
    region,
    service,
    signedHeaders,
    signature,
    amzDate: p.get("X-Amz-Date") as string,
    expiresSec,
    ...(token !== undefined ? { securityToken: token } : {}),
  };
}

/** A SigV2 presigned query (`AWSAccessKeyId`, `Signature`, `Expires`) is refused as `unsupported`. */
function throwIfSigV2Query(rawQuery: string): void {
  const p = new Map<string, string>();
  for (const [k, v] of parseRawQuery(rawQuery)) if (!p.has(k)) p.set(k, v);
  const accessKeyId = p.get("AWSAccessKeyId");
  if (accessKeyId === undefined || !p.has("Signature") || !p.has("Expires")) return;
  const securityToken = p.get("x-amz-security-token");
  throw new SigV4Problem("unsupported", SIGV2_MESSAGE, {
    service: "s3",
    accessKeyId,
    ...(securityToken !== undefined ? { securityToken } : {}),
  });
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
  /** Hex SHA-256 of the payload, or the literal from `x-amz-content-sha256` (`UNSIGNED-PAYLOAD` for S3 presigned URLs). */
  payloadHash: string;
  /** `x-amz-date` header value (yyyymmddThhmmssZ); query form uses `auth.amzDate` instead. */
  amzDate: string;
}

/** Options for {@link verifySigV4}. */
export interface VerifySigV4Options {
  /** Allowed clock difference; AWS allows 5 min (15 for S3). For presigned URLs: how far in the future X-Amz-Date may be. */
  maxSkewMs: number;
  /** Current time in ms, for tests. */
  nowMs?: number;
}

/** RFC 3986 encoding as SigV4 specifies (unreserved: A-Z a-z 0-9 - _ . ~). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(value: string): string {
  // Without a '%' there is nothing to decode (and nothing malformed): skip the call.
  if (!value.includes("%")) return value;
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

/** SigV4 canonical query string of a raw query (`X-Amz-Signature` left out). */
export function canonicalQuery(rawQuery: string): string {
  const encoded = parseRawQuery(rawQuery)
    .filter(([k]) => k !== "X-Amz-Signature")
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return encoded.map(([k, v]) => `${k}=${v}`).join("&");
}

/** SigV4 canonical URI of a raw path: as sent for S3, normalised and encoded once more for other services. */
export function canonicalPath(rawPath: string, service: string): string {
  if (service === "s3") return rawPath === "" ? "/" : rawPath;
  if (rawPath === "/") return rawPath; // JSON and query protocols: nothing to normalise
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
    if (!names.includes(name)) continue; // only signed headers are read
    const list = values.get(name);
    const value = canonicalHeaderValue(rawHeaders[i + 1] as string);
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

/** A header value trimmed, each run of whitespace made one space. */
export function canonicalHeaderValue(value: string): string {
  // Most values have single spaces only, none at the ends: skip trim and replace. (`\s` is
  // exactly what trim() removes.)
  if (!/[^\S ]| {2}|^ | $/.test(value)) return value;
  return value.trim().replace(/\s+/g, " ");
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
 * request time is outside the allowed window, `expired` when a presigned URL's
 * `X-Amz-Expires` has passed, and `mismatch` when the signature differs. Returns the
 * signature's date (yyyymmddThhmmssZ), which seeds chunk signatures.
 */
export function verifySigV4(
  auth: SigV4Authorization,
  parts: SignedRequestParts,
  secretAccessKey: string,
  keys: SigningKeyCache,
  options: VerifySigV4Options,
): string {
  const amzDate = auth.form === "query" ? (auth.amzDate ?? "") : parts.amzDate;
  const requestMs = parseAmzDate(amzDate);
  if (Number.isNaN(requestMs) || amzDate.slice(0, 8) !== auth.scopeDate) {
    throw new SigV4Problem(
      "malformed",
      "X-Amz-Date is missing, malformed or does not match the credential scope date.",
    );
  }
  const nowMs = options.nowMs ?? Date.now();
  if (auth.form === "query") {
    if (requestMs - nowMs > options.maxSkewMs) {
      throw new SigV4Problem("skewed", "Request is not yet valid.");
    }
    if (nowMs > requestMs + (auth.expiresSec ?? 0) * 1000) {
      throw new SigV4Problem("expired", "Request has expired");
    }
  } else if (Math.abs(nowMs - requestMs) > options.maxSkewMs) {
    throw new SigV4Problem(
      "skewed",
      `The difference between the request time (${amzDate}) and the current time (${new Date(nowMs).toISOString()}) is too large; at most ${Math.round(options.maxSkewMs / 60000)} minutes are allowed.`,
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
  const expected = requestSignature(
    canonicalRequest,
    amzDate,
    scope,
    keys.get(secretAccessKey, auth.scopeDate, auth.region, auth.service),
  );
  const given = Buffer.from(auth.signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SigV4Problem(
      "mismatch",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
  }
  return amzDate;
}

/** SigV4 signature of a canonical request: HMAC with the signing key over the string to sign. */
export function requestSignature(canonicalRequest: string, amzDate: string, scope: string, signingKey: Buffer): Buffer {
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash("sha256").update(canonicalRequest).digest("hex")}`;
  return createHmac("sha256", signingKey).update(stringToSign).digest();
}

/** Credential scope of a signature: `yyyymmdd/region/service/aws4_request`. */
export function credentialScope(auth: Pick<SigV4Authorization, "scopeDate" | "region" | "service">): string {
  return `${auth.scopeDate}/${auth.region}/${auth.service}/aws4_request`;
}

/** Compares two hex signatures in constant time (false for different lengths or non-hex). */
export function signaturesEqual(givenHex: string, expected: Buffer): boolean {
  if (givenHex.length !== expected.length * 2) return false;
  const given = Buffer.from(givenHex, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
