import type { JsonObject } from "@bufbuild/protobuf";
import { type AuditEvent, Decision, type PayloadDigest, type Resource, type TollgateContext } from "@tollgate/proto";
import type { Classification } from "./aws-classifier.js";
import { eventCategoryOf } from "./event-category.js";
import type { PayloadDigestValue } from "./payload-digest.js";
import type { UpstreamIdentityInfo } from "./upstream-credentials.js";

/** CloudTrail's cap on `requestParameters` and `responseElements`: 100 KiB of JSON each. */
export const MAX_RECORDED_ELEMENTS_BYTES = 100 * 1024;

/** TLS details of the caller's connection (CloudTrail's `tlsDetails`). */
export interface TlsInfo {
  /** e.g. `"TLSv1.3"`. */
  tlsVersion: string;
  /** IANA name when known (`"TLS_AES_128_GCM_SHA256"`), else OpenSSL's. */
  cipherSuite: string;
  /** The Host header the client sent. */
  clientProvidedHostHeader: string;
}

/** Everything known about one call when its record is written. */
export interface CallRecord {
  eventId: string;
  eventTimeMs: number;
  sourceIp: string;
  userAgent: string;
  classification: Classification;
  principal: string;
  authenticated: boolean;
  accessKeyId: string;
  credentialId: string;
  connection: string;
  /** SigV4 signing name the caller used ("" when unknown). */
  signingName: string;
  accountId: string;
  edge: string;
  allowed: boolean;
  reason: string;
  httpStatus: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  requestId: string;
  errorCode?: string;
  errorMessage?: string;
  responseElements: Record<string, unknown> | null;
  /** W3C trace id of the call (see `call-span.ts`). */
  traceId: string;
  /** Id of the call's recorded SERVER span; absent or "" when it was not recorded. */
  spanId?: string;
  /** SigV4 form the caller signed with, when it parsed. */
  authForm?: "header" | "query";
  /** Present when the caller's connection used TLS. */
  tls?: TlsInfo;
  /** Object body the caller sent (PutObject, UploadPart). */
  requestPayload?: PayloadDigestValue;
  /** Object body returned to the caller (GetObject). */
  responsePayload?: PayloadDigestValue;
  /** Cap for each of requestParameters and responseElements; default {@link MAX_RECORDED_ELEMENTS_BYTES}. */
  maxElementsBytes?: number;
  /** Who the call is forwarded upstream as (set once the upstream credentials are resolved). */
  upstreamIdentity?: UpstreamIdentityInfo;
  /**
   * `capElements(classification.requestParameters, cap)` when already computed for this call
   * (the intent's), so the final event does not serialize the parameters again.
   */
  cappedRequestParameters?: CappedElements;
}

/** A Struct value cut to a byte cap, and whether anything was cut. */
export interface CappedElements {
  value: JsonObject | undefined;
  truncated: boolean;
}

/**
 * Converts to a Struct-compatible JSON object (drops undefined, converts Buffers) and applies
 * the cap: when the JSON exceeds `maxBytes` (UTF-8), the top-level members are kept in order
 * while the running total still fits and every member that does not fit is dropped, so small
 * members (`TableName`, `ReturnConsumedCapacity`, `bucketName`, ...) survive an oversized one.
 */
export function capElements(value: Record<string, unknown> | null, maxBytes: number): CappedElements {
  if (value === null) return { value: undefined, truncated: false };
  const json = JSON.stringify(value);
  // Fast path: a JSON string never takes more UTF-8 bytes than 3 per UTF-16 unit.
  if (json.length * 3 <= maxBytes || Buffer.byteLength(json) <= maxBytes) {
    return { value: JSON.parse(json) as JsonObject, truncated: false };
  }
  const kept: JsonObject = {};
  let total = 2; // "{}"
  for (const [key, member] of Object.entries(value)) {
    const memberJson = JSON.stringify(member);
    if (memberJson === undefined) continue;
    const bytes = Buffer.byteLength(JSON.stringify(key)) + 1 + Buffer.byteLength(memberJson) + 1;
    if (total + bytes > maxBytes) continue;
    total += bytes;
    kept[key] = JSON.parse(memberJson) as JsonObject[string];
  }
  return { value: kept, truncated: true };
}

/** How the principal authenticated: `"gateway-credential"` (header SigV4), `"-presigned"` (query form), `""` if not. */
export function authMethodOf(authenticated: boolean, form: "header" | "query" | undefined): string {
  if (!authenticated || form === undefined) return "";
  return form === "query" ? "gateway-credential-presigned" : "gateway-credential";
}

/**
 * Builds the audit event (CloudTrail record plus Tollgate context) for a call.
 *
 * The messages are written out as object literals instead of through protobuf-es `create()`,
 * whose reflection (zero message, then every member of the init object) was ~2% of a small
 * call's CPU, twice per call. The result is what `create(AuditEventSchema, ...)` gives: the
 * same `$typeName`s, the implicit-presence fields always present, the explicit-presence ones
 * (submessages, `errorCode`, `errorMessage`) only when set, and the same key order.
 * audit-record.test.ts checks this against `create()` on many varied records.
 */
export function buildAuditEvent(r: CallRecord): AuditEvent {
  const c = r.classification;
  const cap = r.maxElementsBytes ?? MAX_RECORDED_ELEMENTS_BYTES;
  const request = r.cappedRequestParameters ?? capElements(c.requestParameters, cap);
  const response = capElements(r.responseElements, cap);
  const eventCategory = eventCategoryOf(c.service, c.eventName);
  const resources: Resource[] = [];
  for (const x of c.resources) resources.push({ $typeName: "tollgate.audit.v1.Resource", arn: x.arn, type: x.type });
  const tollgate: TollgateContext = {
    $typeName: "tollgate.audit.v1.TollgateContext",
    connection: r.connection,
    edge: r.edge,
    decision: r.allowed ? Decision.ALLOW : Decision.DENY,
    reason: r.reason,
    durationMs: Math.round(r.durationMs * 1000) / 1000,
    httpStatus: r.httpStatus,
    bytesIn: BigInt(r.bytesIn),
    bytesOut: BigInt(r.bytesOut),
    signingName: r.signingName !== "" ? r.signingName : c.service,
    credentialId: r.credentialId,
    traceId: r.traceId,
    authMethod: authMethodOf(r.authenticated, r.authForm),
    sequence: 0n,
    prevHash: "",
    hash: "",
    requestParametersTruncated: request.truncated,
    responseElementsTruncated: response.truncated,
    outcome: "",
    spanId: r.spanId ?? "",
  };
  if (r.requestPayload !== undefined) tollgate.requestPayload = payloadDigest(r.requestPayload);
  if (r.responsePayload !== undefined) tollgate.responsePayload = payloadDigest(r.responsePayload);
  if (r.upstreamIdentity !== undefined) {
    const u = r.upstreamIdentity;
    tollgate.upstreamIdentity = {
      $typeName: "tollgate.audit.v1.UpstreamIdentity",
      source: u.source,
      accessKeyId: u.accessKeyId,
      roleArn: u.roleArn,
      assumedRoleArn: u.assumedRoleArn,
      sessionName: u.sessionName,
      sourceIdentity: u.sourceIdentity,
    };
  }
  const event: AuditEvent = {
    $typeName: "tollgate.audit.v1.AuditEvent",
    eventVersion: "1.0",
    eventId: r.eventId,
    eventTime: new Date(r.eventTimeMs).toISOString(),
    eventSource: c.eventSource,
    eventName: c.eventName,
    awsRegion: c.awsRegion,
    sourceIpAddress: r.sourceIp,
    userAgent: r.userAgent,
    requestId: r.requestId,
    readOnly: c.readOnly,
    resources,
    eventType: "AwsApiCall",
    recipientAccountId: r.accountId,
    eventCategory,
    managementEvent: eventCategory === "Management",
  };
  event.userIdentity = {
    $typeName: "tollgate.audit.v1.UserIdentity",
    type: r.authenticated ? "TollgatePrincipal" : "Unauthenticated",
    principalId: r.principal,
    accessKeyId: r.accessKeyId,
  };
  if (request.value !== undefined) event.requestParameters = request.value;
  if (response.value !== undefined) event.responseElements = response.value;
  if (r.errorCode !== undefined) event.errorCode = r.errorCode;
  if (r.errorMessage !== undefined) event.errorMessage = r.errorMessage;
  event.tollgate = tollgate;
  if (r.tls !== undefined) {
    event.tlsDetails = {
      $typeName: "tollgate.audit.v1.TlsDetails",
      tlsVersion: r.tls.tlsVersion,
      cipherSuite: r.tls.cipherSuite,
      clientProvidedHostHeader: r.tls.clientProvidedHostHeader,
    };
  }
  return event;
}

function payloadDigest(d: PayloadDigestValue): PayloadDigest {
  return { $typeName: "tollgate.audit.v1.PayloadDigest", size: BigInt(d.size), sha256: d.sha256 };
}
