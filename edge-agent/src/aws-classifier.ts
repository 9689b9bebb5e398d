/**
 * Classification of an incoming AWS API request: which service and operation it is, whether it
 * only reads, which resources it touches and its (redacted) parameters, in CloudTrail's terms.
 *
 * Services and operations come from AWS's own API models (`aws-models.ts`, generated from the
 * pinned aws-sdk models). Routing, in order:
 * 1. a `/svc/<serviceId-or-endpointPrefix>/` path prefix (per-service endpoint URLs) pins the
 *    service; the rest of the path is what AWS sees (`upstreamPath`);
 * 2. Smithy RPC v2 CBOR (`smithy-protocol: rpc-v2-cbor`, `/service/<Target>/operation/<Op>`);
 * 3. awsJson `X-Amz-Target: <TargetPrefix>.<Op>`;
 * 4. awsQuery/ec2Query `Action=` (query string or form body; `Version=` picks among services that
 *    share a signing name, e.g. RDS/Neptune/DocumentDB, ELB/ELBv2);
 * 5. rest-json/rest-xml: the most specific operation whose method, path template, literal query
 *    keys and required querystring/header members match, among the services that share the
 *    SigV4 signing name (S3 and S3 Control, SES and SESv2, ...). S3 virtual-hosted requests
 *    (`bucket.s3[.region].amazonaws.com`, `bucket.localhost`) are matched with the bucket moved
 *    into the path.
 *
 * `readOnly`: the operation name starts with Get, List, Describe, Head, Query, Scan, BatchGet,
 * TransactGet, Lookup, Search, Select or Check (followed by an upper-case letter, digit or end),
 * or it is a rest operation bound to GET or HEAD.
 *
 * The operation is always derived from what AWS itself would act on (method, path, sub-resources,
 * `x-amz-target`, `Action`), never from client hints such as the SDK's `x-id` query parameter, so a
 * client cannot make a write look like a read. Classification never throws: malformed input
 * yields `"Unknown"` or `null` parameters.
 *
 * `requestParameters`: JSON/CBOR bodies as sent; query protocols' flattened form fields; for rest
 * operations the uri labels and querystring members under their model member names (`FunctionName`,
 * `Qualifier`) plus the JSON body members as sent. S3 keeps CloudTrail's own S3 shape
 * (`bucketName`, `Host`, `key` and the raw query parameters).
 */
import { type AwsModels, type AwsServiceModel, awsModels, matchRestOperation, splitPath } from "./aws-models.js";
import { decodeCbor } from "./cbor-decoder.js";
import { redactSensitive } from "./sensitive-redaction.js";

/** AWS wire protocols, named as in the Smithy protocol traits. */
export type AwsProtocol =
  | "restXml"
  | "restJson"
  | "awsJson1_0"
  | "awsJson1_1"
  | "awsQuery"
  | "ec2Query"
  | "smithyRpcV2Cbor";

/** What the classifier needs to know about a request (after SigV4 verification). */
export interface ClassifyInput {
  /** HTTP method, e.g. `"GET"` (case-insensitive). */
  method: string;
  /** Path exactly as on the wire (still percent-encoded), without the query, e.g. `/my-bucket/dir/a%20b.txt`. */
  rawPath: string;
  /** Decoded query pairs in order; a bare `?uploads` is `["uploads", ""]`. */
  query: ReadonlyArray<readonly [string, string]>;
  /** Request headers with lower-case names (node's `IncomingHttpHeaders`); `host` is used for S3 virtual hosting. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Service from the SigV4 credential scope, e.g. `"s3"`, `"dynamodb"`, `"sts"`. */
  signingName: string;
  /** Region from the SigV4 credential scope, e.g. `"eu-west-1"`. */
  region: string;
  /** Upstream AWS account id used in ARNs; `""` leaves the ARN account field empty. */
  accountId: string;
  /** Whole request body for non-S3 services (JSON, CBOR or form-encoded); `undefined` for S3. */
  body?: Buffer;
}

/** A resource touched by the request, as in CloudTrail's `resources`. */
export interface AwsResource {
  /** Full ARN, e.g. `arn:aws:s3:::my-bucket`. */
  arn: string;
  /** CloudTrail/CloudFormation resource type, e.g. `"AWS::S3::Bucket"`. */
  type: string;
}

/** The classifier's verdict on one request. */
export interface Classification {
  /** Short service name used in subjects (the signing name), e.g. `"s3"`; `"unknown"` if not a valid name. */
  service: string;
  /** CloudTrail event source, `<service>.amazonaws.com`. */
  eventSource: string;
  /** Exact API operation name, e.g. `"ListObjectsV2"`; `"Unknown"` if not determinable. */
  eventName: string;
  /** Region; global services (IAM, Route 53, ...) are recorded in their partition's home region like CloudTrail. */
  awsRegion: string;
  /** Whether the operation only reads (unknown operations are not read-only). */
  readOnly: boolean;
  /** Wire protocol of the request (and hence of its response and errors). */
  protocol: AwsProtocol;
  /** Resources named by the request, without duplicates. */
  resources: AwsResource[];
  /** Request parameters like CloudTrail's, already redacted; `null` when there are none or the body is unreadable. */
  requestParameters: Record<string, unknown> | null;
  /** The AWS API model the request was routed to (aws-sdk model key, e.g. `"s3control"`, `"sesv2"`); absent if none. */
  apiService?: string;
  /** The model's endpoint prefix (`"email"` for SES, `"monitoring"` for CloudWatch): the upstream host's first label. */
  endpointPrefix?: string;
  /**
   * Path to send upstream when the request came through a per-service endpoint prefix
   * (`/svc/<id>/rest` → `/rest`); absent when the wire path is forwarded as it is.
   */
  upstreamPath?: string;
  /** S3 bucket named by the request (path or virtual-hosted). */
  s3Bucket?: string;
  /** How the bucket was addressed: in the Host (`"virtual"`) or the path (`"path"`). */
  s3Addressing?: "virtual" | "path";
}

const UNKNOWN = "Unknown";

/** Classifies one AWS API request. Never throws. */
export function classifyRequest(input: ClassifyInput): Classification {
  try {
    return classify(input);
  } catch {
    const service = normaliseService(input.signingName);
    return {
      service,
      eventSource: `${service}.amazonaws.com`,
      eventName: UNKNOWN,
      awsRegion: input.region,
      readOnly: false,
      protocol: "restJson",
      resources: [],
      requestParameters: null,
    };
  }
}

/** Where a request is going once its service is known. */
interface Route {
  service: string;
  model: AwsServiceModel | undefined;
  eventName: string;
  protocol: AwsProtocol;
  params: Record<string, unknown> | null;
  /** Flattened query fields (query protocols), for `.N` list resources. */
  fields?: ReadonlyArray<readonly [string, string]>;
  /** Decoded rest uri labels, by member name. */
  labels?: Record<string, string>;
}

function classify(input: ClassifyInput): Classification {
  const models = awsModels();
  const service = normaliseService(input.signingName);
  const method = input.method.toUpperCase();

  // 1. Per-service endpoint prefix.
  let rawPath = input.rawPath;
  let pinned: AwsServiceModel | undefined;
  let upstreamPath: string | undefined;
  const svc = /^\/svc\/([^/]+)(\/.*)?$/.exec(rawPath);
  if (svc !== null) {
    pinned = models.byAlias(safeDecode(svc[1] as string));
    if (pinned !== undefined) {
      rawPath = svc[2] ?? "/";
      upstreamPath = rawPath;
    }
  }
  const host = hostWithoutPort(headerValue(input.headers, "host") ?? "");
  const candidates = pinned !== undefined ? [pinned] : orderByHost(models.bySigningName(service), host);

  let route: Route;
  let s3: S3Addressing | undefined;
  const cbor = rpcV2CborPath(input.headers, rawPath);
  const target = headerValue(input.headers, "x-amz-target");
  if (cbor !== undefined) {
    route = routeRpcV2Cbor(models, candidates, service, cbor, input.body);
  } else if (target !== undefined) {
    route = routeJson(models, candidates, service, target, input);
  } else {
    const fields = queryFields(input);
    const hasAction = fields.some(([name]) => name === "Action");
    const queryCandidates = candidates.filter((m) => m.protocols.includes("query") || m.protocols.includes("ec2"));
    if (hasAction && (queryCandidates.length > 0 || candidates.length === 0)) {
      route = routeQuery(queryCandidates, service, fields);
    } else {
      s3 = service === "s3" || pinned?.key === "s3" ? s3Addressing(host, rawPath) : undefined;
      route = routeRest(candidates, service, method, s3?.matchPath ?? rawPath, input);
    }
  }

  const partition = partitionOf(input.region);
  let awsRegion = input.region;
  if (route.model?.globalEndpoint !== undefined) awsRegion = globalRegionOf(partition, input.region);

  let resources: AwsResource[];
  let requestParameters: Record<string, unknown> | null;
  const extra: Partial<Classification> = {};
  if (route.model?.key === "s3") {
    const s3Result = s3Details(input, route, s3 ?? { matchPath: rawPath, virtual: false }, partition);
    resources = s3Result.resources;
    requestParameters = s3Result.params;
    if (s3Result.bucket !== undefined) {
      extra.s3Bucket = s3Result.bucket;
      extra.s3Addressing = s3?.virtual === true ? "virtual" : "path";
    }
  } else {
    resources = collectResources(route, {
      partition,
      region: input.region,
      accountId: input.accountId,
      operation: route.eventName,
    });
    requestParameters = route.params === null ? null : nonEmptyOrNull(redactedRecord(route, route.params));
  }

  const result: Classification = {
    service,
    eventSource: `${service}.amazonaws.com`,
    eventName: route.eventName,
    awsRegion,
    readOnly: isReadOnly(route.eventName, route.protocol, method),
    protocol: route.protocol,
    resources,
    requestParameters,
  };
  if (route.model !== undefined) {
    result.apiService = route.model.key;
    result.endpointPrefix = route.model.endpointPrefix;
  }
  if (upstreamPath !== undefined) result.upstreamPath = upstreamPath;
  return Object.assign(result, extra);
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

function normaliseService(signingName: string): string {
  const lower = signingName.toLowerCase();
  // Service names end up in subjects and event sources: keep them to what AWS uses.
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(lower) ? lower : "unknown";
}

function headerValue(headers: ClassifyInput["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function hostWithoutPort(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) return lower.slice(0, lower.indexOf("]") + 1);
  const colon = lower.lastIndexOf(":");
  return colon === -1 ? lower : lower.slice(0, colon);
}

/**
 * The endpoint prefix an AWS host names, after SDK host prefixes: `sync-states.us-east-1...` →
 * `states`, `123456789012.s3-control.eu-west-1...` → `s3-control`, `data-iot...` → `iot`.
 */
export function hostEndpointPrefix(host: string): string | undefined {
  if (!/\.amazonaws\.com(\.cn)?$/.test(host)) return undefined;
  const labels = host.split(".");
  while (labels.length > 0 && /^\d{12}$/.test(labels[0] as string)) labels.shift();
  const first = labels[0];
  return first?.replace(/^(sync|data|runtime|api)-/, "");
}

/** Among services sharing a signing name, the one the Host names first (real AWS hosts only). */
function orderByHost(candidates: readonly AwsServiceModel[], host: string): readonly AwsServiceModel[] {
  const prefix = hostEndpointPrefix(host);
  if (prefix === undefined || candidates.length < 2) return candidates;
  const named = candidates.filter((m) => m.endpointPrefix === prefix);
  return named.length === 0 ? candidates : [...named, ...candidates.filter((m) => m.endpointPrefix !== prefix)];
}

/** ARN partition for a region (`aws`, `aws-cn`, `aws-us-gov`, ...). */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  if (region.startsWith("us-iso-")) return "aws-iso";
  if (region.startsWith("us-isob-")) return "aws-iso-b";
  if (region.startsWith("eu-isoe-")) return "aws-iso-e";
  if (region.startsWith("us-isof-")) return "aws-iso-f";
  return "aws";
}

/** Region CloudTrail records for global services such as IAM. */
function globalRegionOf(partition: string, region: string): string {
  switch (partition) {
    case "aws-cn":
      return "cn-north-1";
    case "aws-us-gov":
      return "us-gov-west-1";
    case "aws":
      return "us-east-1";
    default:
      return region;
  }
}

function isOperationName(value: string): boolean {
  return /^[A-Za-z][A-Za-z0-9]{0,127}$/.test(value);
}

const READ_ONLY_PREFIX =
  /^(Get|List|Describe|Head|Query|Scan|BatchGet|TransactGet|Lookup|Search|Select|Check)([A-Z0-9]|$)/;

/** See the module comment for the rule. */
function isReadOnly(operation: string, protocol: AwsProtocol, method: string): boolean {
  if (operation === UNKNOWN) return false;
  if (READ_ONLY_PREFIX.test(operation)) return true;
  return (protocol === "restXml" || protocol === "restJson") && (method === "GET" || method === "HEAD");
}

class ResourceList {
  readonly items: AwsResource[] = [];
  readonly #seen = new Set<string>();

  add(arn: string, type: string): void {
    if (this.#seen.has(arn)) return;
    this.#seen.add(arn);
    this.items.push({ arn, type });
  }
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

function nonEmptyOrNull(params: Record<string, unknown>): Record<string, unknown> | null {
  return Object.keys(params).length === 0 ? null : params;
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty keeps a parameter named "__proto__" as plain data; any other key is plain
  // data when assigned (Object.prototype has no other setter), and assigning is much cheaper.
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else target[key] = value;
}

function redactedRecord(route: Route, value: Record<string, unknown>): Record<string, unknown> {
  const redacted = redactSensitive(route.model?.key ?? route.service, route.eventName, value, "request");
  return isRecord(redacted) ? redacted : {};
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJsonObject(body: Buffer | undefined): Record<string, unknown> | null | undefined {
  if (body === undefined || body.length === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    return isRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

function stringMember(params: Record<string, unknown> | null | undefined, name: string): string | undefined {
  const value = params?.[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function protocolOf(model: AwsServiceModel | undefined, fallback: AwsProtocol): AwsProtocol {
  switch (model?.protocol) {
    case "rest-xml":
      return "restXml";
    case "rest-json":
      return "restJson";
    case "json":
      return model.jsonVersion === "1.0" ? "awsJson1_0" : "awsJson1_1";
    case "query":
      return "awsQuery";
    case "ec2":
      return "ec2Query";
    case "smithy-rpc-v2-cbor":
      return "smithyRpcV2Cbor";
    default:
      return fallback;
  }
}

/** Prefers the services that define `operation`, keeping the given order otherwise. */
function withOperation(models: readonly AwsServiceModel[], operation: string): AwsServiceModel | undefined {
  return models.find((m) => m.operations.has(operation)) ?? models[0];
}

// ---------------------------------------------------------------------------------------------
// Smithy RPC v2 CBOR and awsJson (X-Amz-Target)

function rpcV2CborPath(
  headers: ClassifyInput["headers"],
  rawPath: string,
): { target: string; operation: string } | undefined {
  if (headerValue(headers, "smithy-protocol")?.toLowerCase() !== "rpc-v2-cbor") return undefined;
  const m = /^(?:\/.*)?\/service\/([^/]+)\/operation\/([^/]+)$/.exec(rawPath);
  if (m === null) return undefined;
  return { target: safeDecode(m[1] as string), operation: safeDecode(m[2] as string) };
}

function byTarget(
  models: AwsModels,
  candidates: readonly AwsServiceModel[],
  prefix: string,
  operation: string,
): AwsServiceModel | undefined {
  const own = candidates.filter((m) => m.targetPrefix === prefix);
  if (own.length > 0) return withOperation(own, operation);
  if (candidates.length === 1 && candidates[0]?.targetPrefix === undefined) return candidates[0];
  // A target prefix unknown under this signing name: route by the prefix alone, if it is known.
  return withOperation(models.byTargetPrefix(prefix), operation) ?? candidates[0];
}

function routeRpcV2Cbor(
  models: AwsModels,
  candidates: readonly AwsServiceModel[],
  service: string,
  cbor: { target: string; operation: string },
  body: Buffer | undefined,
): Route {
  const eventName = isOperationName(cbor.operation) ? cbor.operation : UNKNOWN;
  const model = byTarget(models, candidates, cbor.target, eventName);
  let params: Record<string, unknown> | null = null;
  if (body !== undefined && body.length > 0) {
    try {
      const decoded = decodeCbor(body);
      params = isRecord(decoded) ? decoded : null;
    } catch {
      params = null;
    }
  }
  return { service, model, eventName, protocol: "smithyRpcV2Cbor", params };
}

function routeJson(
  models: AwsModels,
  candidates: readonly AwsServiceModel[],
  service: string,
  target: string,
  input: ClassifyInput,
): Route {
  const dot = target.lastIndexOf(".");
  const operation = target.slice(dot + 1);
  const eventName = isOperationName(operation) ? operation : UNKNOWN;
  const model = byTarget(models, candidates, dot === -1 ? "" : target.slice(0, dot), eventName);
  // The model's JSON version wins; the content type only decides for services it does not know.
  const contentType = headerValue(input.headers, "content-type")?.toLowerCase() ?? "";
  let protocol: AwsProtocol;
  if (model?.jsonVersion !== undefined) protocol = model.jsonVersion === "1.0" ? "awsJson1_0" : "awsJson1_1";
  else protocol = contentType.includes("application/x-amz-json-1.0") ? "awsJson1_0" : "awsJson1_1";
  const body = parseJsonObject(input.body);
  return { service, model, eventName, protocol, params: body ?? null };
}

// ---------------------------------------------------------------------------------------------
// Query protocols (Action=...)

/** Form fields of the query string and (for form-encoded bodies) the body, in that order. */
function queryFields(input: ClassifyInput): Array<readonly [string, string]> {
  const fields: Array<readonly [string, string]> = [...input.query];
  const body = input.body;
  if (body === undefined || body.length === 0) return fields;
  const contentType = headerValue(input.headers, "content-type")?.toLowerCase() ?? "";
  const text = body.toString("utf8");
  const looksLikeForm = contentType.includes("x-www-form-urlencoded") || /^[A-Za-z0-9_.%-]+=/.test(text);
  if (!looksLikeForm) return fields;
  for (const pair of new URLSearchParams(text)) fields.push(pair);
  return fields;
}

function routeQuery(
  candidates: readonly AwsServiceModel[],
  service: string,
  fields: ReadonlyArray<readonly [string, string]>,
): Route {
  // Conflicting Actions (query string vs body) must not let the audit show the harmless one.
  const actions = new Set(fields.filter(([name]) => name === "Action").map(([, value]) => value));
  const action = actions.size === 1 ? [...actions][0] : undefined;
  const eventName = action !== undefined && isOperationName(action) ? action : UNKNOWN;
  const version = fields.find(([name]) => name === "Version")?.[1];
  const versioned = candidates.filter((m) => m.apiVersion === version);
  const model = withOperation(versioned.length > 0 ? versioned : candidates, eventName);

  const params: Record<string, unknown> = {};
  for (const [name, value] of fields) {
    if (name === "Action" || name === "Version") continue;
    setOwn(params, name, value);
  }
  const protocol: AwsProtocol = model?.protocol === "ec2" ? "ec2Query" : "awsQuery";
  return { service, model, eventName, protocol, params: nonEmptyOrNull(params), fields };
}

// ---------------------------------------------------------------------------------------------
// rest-json / rest-xml

function routeRest(
  candidates: readonly AwsServiceModel[],
  service: string,
  method: string,
  path: string,
  input: ClassifyInput,
): Route {
  const request = { method, segments: splitPath(path), query: input.query, headers: input.headers };
  let best: ReturnType<typeof matchRestOperation>;
  for (const model of candidates) {
    if (model.protocol !== "rest-json" && model.protocol !== "rest-xml") continue;
    const match = matchRestOperation(model, request);
    // Candidates come in preference order: a later one must be strictly more specific.
    if (match !== undefined && (best === undefined || match.score > best.score)) best = match;
  }
  const restModel = candidates.find((m) => m.protocol === "rest-json" || m.protocol === "rest-xml");
  if (best === undefined) {
    const model = restModel ?? candidates[0];
    return { service, model, eventName: UNKNOWN, protocol: protocolOf(model, "restJson"), params: null };
  }
  const { operation, service: model } = best;
  const params: Record<string, unknown> = {};
  const labels: Record<string, string> = {};
  for (const [label, value] of Object.entries(best.labels)) {
    const member = operation.labels[label] ?? label;
    labels[member] = value;
    setOwn(params, member, value);
  }
  for (const [name, value] of input.query) {
    appendParam(params, operation.queryMembers[name] ?? name, value);
  }
  if (model.protocol === "rest-json" && !operation.payloadIsBlob) {
    const body = parseJsonObject(input.body);
    if (body !== undefined && body !== null) {
      if (operation.payload !== undefined) setOwn(params, operation.payload, body);
      else for (const [name, value] of Object.entries(body)) setOwn(params, name, value);
    }
  }
  return {
    service,
    model,
    eventName: operation.name,
    protocol: protocolOf(model, "restJson"),
    params: nonEmptyOrNull(params),
    labels,
  };
}

// ---------------------------------------------------------------------------------------------
// S3 (rest-xml, path-style and virtual-hosted addressing)

interface S3Addressing {
  /** Path-style path to match (bucket first). */
  matchPath: string;
  virtual: boolean;
  bucket?: string;
}

/**
 * `<bucket>.s3[-fips][.dualstack][.<region>|-<region>].amazonaws.com[.cn]`; access points,
 * S3 Control, Object Lambda and Outposts use other labels (`s3-accesspoint`, `s3-control`) and do not match.
 */
const S3_VIRTUAL_HOST =
  /^(.+)\.s3(?:-fips)?(?:\.dualstack)?(?:[.-](?:[a-z]{2}(?:-[a-z]+)+-\d+|external-1))?\.amazonaws\.com(?:\.cn)?$/;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_LOCALHOST = /^(.+)\.localhost$/;

/** Bucket in the Host (`bucket.s3.eu-west-1.amazonaws.com`, `bucket.localhost`) → path style. */
function s3Addressing(host: string, rawPath: string): S3Addressing {
  // S3 Control (`{AccountId}.s3-control.<region>...`) puts the account, not a bucket, in the Host.
  if (host.includes(".s3-control.")) return { matchPath: rawPath, virtual: false };
  const m = S3_VIRTUAL_HOST.exec(host) ?? S3_LOCALHOST.exec(host);
  const bucket = m?.[1];
  if (bucket === undefined || !BUCKET_NAME.test(bucket) || /^\d+\.\d+\.\d+$/.test(bucket)) {
    return { matchPath: rawPath, virtual: false };
  }
  const rest = rawPath === "/" || rawPath === "" ? "" : rawPath;
  return { matchPath: `/${encodeURIComponent(bucket)}${rest}`, virtual: true, bucket };
}

function s3Details(
  input: ClassifyInput,
  route: Route,
  addressing: S3Addressing,
  partition: string,
): { resources: AwsResource[]; params: Record<string, unknown> | null; bucket: string | undefined } {
  const copySource = headerValue(input.headers, "x-amz-copy-source");
  const host = headerValue(input.headers, "host");
  const { bucket, key } = splitS3Path(addressing.matchPath);
  const eventName = route.eventName;

  const resources = new ResourceList();
  if (bucket !== undefined) {
    if (key !== undefined) {
      resources.add(`arn:${partition}:s3:::${bucket}/${key}`, "AWS::S3::Object");
    }
    resources.add(`arn:${partition}:s3:::${bucket}`, "AWS::S3::Bucket");
  }
  const copies = eventName === "CopyObject" || eventName === "UploadPartCopy";
  if (copies && copySource !== undefined) {
    addS3CopySource(resources, partition, copySource);
  }

  const params: Record<string, unknown> = {};
  if (bucket !== undefined) setOwn(params, "bucketName", bucket);
  if (host !== undefined) setOwn(params, "Host", host);
  if (key !== undefined) setOwn(params, "key", key);
  if (copies && copySource !== undefined) setOwn(params, "x-amz-copy-source", copySource);
  for (const [name, value] of input.query) {
    if (Object.hasOwn(params, name) && (name === "bucketName" || name === "Host" || name === "key")) continue;
    appendParam(params, name, value);
  }
  return {
    resources: resources.items,
    params: nonEmptyOrNull(redactedRecord(route, params)),
    bucket,
  };
}

/** Repeated query parameters become arrays, so nothing sent is lost from the record. */
function appendParam(params: Record<string, unknown>, name: string, value: string): void {
  if (!Object.hasOwn(params, name)) {
    setOwn(params, name, value);
    return;
  }
  const previous = params[name];
  setOwn(params, name, Array.isArray(previous) ? [...previous, value] : [previous, value]);
}

/** Path-style: `/bucket` or `/bucket/` is the bucket, anything after the next `/` is the key. */
function splitS3Path(rawPath: string): { bucket: string | undefined; key: string | undefined } {
  const path = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath;
  if (path === "") return { bucket: undefined, key: undefined };
  const slash = path.indexOf("/");
  if (slash === -1) return { bucket: safeDecode(path), key: undefined };
  const bucket = safeDecode(path.slice(0, slash));
  const rawKey = path.slice(slash + 1);
  if (bucket === "") return { bucket: undefined, key: undefined };
  // Decode per segment so that an encoded "%2F" and a literal "/" both end up as "/".
  const key = rawKey === "" ? undefined : rawKey.split("/").map(safeDecode).join("/");
  return { bucket, key };
}

/** `x-amz-copy-source: /src-bucket/src%20key?versionId=v` (leading slash optional) or an access point ARN. */
function addS3CopySource(resources: ResourceList, partition: string, copySource: string): void {
  const withoutVersion = copySource.split("?")[0] ?? "";
  const decoded = safeDecode(withoutVersion);
  if (decoded.startsWith("arn:")) {
    resources.add(decoded, "AWS::S3::Object");
    return;
  }
  const path = decoded.startsWith("/") ? decoded.slice(1) : decoded;
  const slash = path.indexOf("/");
  if (slash <= 0 || slash === path.length - 1) return;
  const bucket = path.slice(0, slash);
  resources.add(`arn:${partition}:s3:::${path}`, "AWS::S3::Object");
  resources.add(`arn:${partition}:s3:::${bucket}`, "AWS::S3::Bucket");
}

// ---------------------------------------------------------------------------------------------
// Resources

/** What a resource rule knows besides the member value. */
interface ResourceContext {
  partition: string;
  region: string;
  accountId: string;
  operation: string;
}

/** Maps one member value to a resource, or nothing. */
type ResourceRule = (value: string, ctx: ResourceContext) => readonly [arn: string, type: string] | undefined;

function arnAs(type: string): ResourceRule {
  return (value) => (value.startsWith("arn:") ? [value, type] : undefined);
}

function onlyFor(operations: RegExp, rule: ResourceRule): ResourceRule {
  return (value, ctx) => (operations.test(ctx.operation) ? rule(value, ctx) : undefined);
}

/** `f`, `f:alias`, `123456789012:function:f`, or a full function ARN. */
const lambdaFunction: ResourceRule = (value, { partition, region, accountId }) => {
  if (value.startsWith("arn:")) return [value, "AWS::Lambda::Function"];
  const partial = /^(\d{12}):function:(.+)$/.exec(value);
  if (partial !== null)
    return [`arn:${partition}:lambda:${region}:${partial[1]}:function:${partial[2]}`, "AWS::Lambda::Function"];
  return [`arn:${partition}:lambda:${region}:${accountId}:function:${value}`, "AWS::Lambda::Function"];
};

/** `https://sqs.eu-west-1.amazonaws.com/123456789012/q` (or an emulator's URL) → queue ARN. */
const sqsQueueUrl: ResourceRule = (value, { partition, region, accountId }) => {
  let path: string[];
  try {
    path = new URL(value).pathname.split("/").filter((part) => part !== "");
  } catch {
    return undefined;
  }
  const name = path[path.length - 1];
  if (name === undefined) return undefined;
  const owner =
    path.length >= 2 && /^\d{12}$/.test(path[path.length - 2] as string) ? path[path.length - 2] : accountId;
  return [`arn:${partition}:sqs:${region}:${owner}:${safeDecode(name)}`, "AWS::SQS::Queue"];
};

const sqsQueueName: ResourceRule = (value, { partition, region, accountId }) => [
  `arn:${partition}:sqs:${region}:${accountId}:${value}`,
  "AWS::SQS::Queue",
];

const snsTopicName: ResourceRule = (value, { partition, region, accountId }) => [
  `arn:${partition}:sns:${region}:${accountId}:${value}`,
  "AWS::SNS::Topic",
];

const ssmParameter: ResourceRule = (value, { partition, region, accountId }) => {
  if (value.startsWith("arn:")) return [value, "AWS::SSM::Parameter"];
  const name = value.replace(/^\/+/, "").replace(/:\d+$|:[A-Za-z][\w.-]*$/, "");
  return [`arn:${partition}:ssm:${region}:${accountId}:parameter/${name}`, "AWS::SSM::Parameter"];
};

/** Key id, `alias/name`, key ARN or alias ARN. */
const kmsKey: ResourceRule = (value, { partition, region, accountId }) => {
  if (value.startsWith("arn:")) return [value, value.includes(":alias/") ? "AWS::KMS::Alias" : "AWS::KMS::Key"];
  if (value.startsWith("alias/")) return [`arn:${partition}:kms:${region}:${accountId}:${value}`, "AWS::KMS::Alias"];
  return [`arn:${partition}:kms:${region}:${accountId}:key/${value}`, "AWS::KMS::Key"];
};

const secret: ResourceRule = (value, { partition, region, accountId }) => [
  value.startsWith("arn:") ? value : `arn:${partition}:secretsmanager:${region}:${accountId}:secret:${value}`,
  "AWS::SecretsManager::Secret",
];

const dynamoDbTable: ResourceRule = (value, { partition, region, accountId }) => [
  value.startsWith("arn:") ? value : `arn:${partition}:dynamodb:${region}:${accountId}:table/${value}`,
  "AWS::DynamoDB::Table",
];

/**
 * Resource rules by API model key and top-level member name (JSON/CBOR body members, query
 * fields with `.N`/`.member.N` list suffixes removed, rest uri labels under their member names).
 * DynamoDB batch/transaction maps, IAM names (with `Path`) and EC2 ids have their own walkers below.
 */
const RESOURCE_RULES: Readonly<Record<string, Readonly<Record<string, ResourceRule>>>> = {
  sts: { RoleArn: arnAs("AWS::IAM::Role") },
  lambda: { FunctionName: lambdaFunction },
  sqs: { QueueUrl: sqsQueueUrl, QueueName: onlyFor(/^(CreateQueue|GetQueueUrl)$/, sqsQueueName) },
  sns: {
    TopicArn: arnAs("AWS::SNS::Topic"),
    TargetArn: arnAs("AWS::SNS::Topic"),
    Name: onlyFor(/^CreateTopic$/, snsTopicName),
  },
  ssm: {
    Name: onlyFor(/Parameter/, ssmParameter),
    Names: onlyFor(/Parameter/, ssmParameter),
  },
  kms: { KeyId: kmsKey, DestinationKeyId: kmsKey, TargetKeyId: kmsKey, AliasName: kmsKey },
  secretsmanager: {
    SecretId: secret,
    ARN: secret,
    SecretIdList: secret,
    Name: onlyFor(/^CreateSecret$/, secret),
  },
  dynamodb: {
    TableName: dynamoDbTable,
    StreamArn: arnAs("AWS::DynamoDB::Stream"),
    ResourceArn: arnAs("AWS::DynamoDB::Table"),
  },
};

function collectResources(route: Route, ctx: ResourceContext): AwsResource[] {
  const resources = new ResourceList();
  const key = route.model?.key ?? route.service;
  const params = route.params;
  if (params !== null) {
    if (key === "dynamodb") addDynamoDbResources(resources, params, ctx);
    if (key === "iam") addIamResources(resources, params, ctx.partition, ctx.accountId);
    const rules = RESOURCE_RULES[key];
    if (rules !== undefined) {
      for (const [name, value] of Object.entries(params)) {
        const rule = rules[name] ?? rules[name.replace(/(\.member)?\.\d+$/, "")];
        if (rule === undefined) continue;
        for (const item of Array.isArray(value) ? value : [value]) {
          if (typeof item !== "string" || item === "") continue;
          const found = rule(item, ctx);
          if (found !== undefined) resources.add(found[0], found[1]);
        }
      }
    }
  }
  if (key === "ec2" && route.fields !== undefined) {
    addEc2Resources(resources, route.fields, ctx.partition, ctx.region, ctx.accountId);
  }
  return resources.items;
}

/** RequestItems tables (batch calls) and TransactItems[].{Put,Update,Delete,ConditionCheck,Get}.TableName. */
function addDynamoDbResources(resources: ResourceList, body: Record<string, unknown>, ctx: ResourceContext): void {
  const addTable = (name: unknown): void => {
    if (typeof name !== "string" || name === "") return;
    const found = dynamoDbTable(name, ctx);
    if (found !== undefined) resources.add(found[0], found[1]);
  };
  addTable(body.TableName);
  if (isRecord(body.RequestItems)) {
    for (const table of Object.keys(body.RequestItems)) addTable(table);
  }
  if (Array.isArray(body.TransactItems)) {
    for (const item of body.TransactItems) {
      if (!isRecord(item)) continue;
      for (const action of Object.values(item)) {
        if (isRecord(action)) addTable(action.TableName);
      }
    }
  }
}

function addIamResources(
  resources: ResourceList,
  params: Record<string, unknown>,
  partition: string,
  accountId: string,
): void {
  // IAM entities may live under a path ("/division/"); only creation calls say which.
  const rawPath = stringMember(params, "Path");
  const path = rawPath?.startsWith("/") && rawPath.endsWith("/") ? rawPath : "/";
  const prefix = `arn:${partition}:iam::${accountId}:`;
  const named: ReadonlyArray<readonly [string, string, string]> = [
    ["UserName", "user", "AWS::IAM::User"],
    ["RoleName", "role", "AWS::IAM::Role"],
    ["GroupName", "group", "AWS::IAM::Group"],
    ["InstanceProfileName", "instance-profile", "AWS::IAM::InstanceProfile"],
  ];
  for (const [member, kind, type] of named) {
    const name = stringMember(params, member);
    if (name !== undefined) resources.add(`${prefix}${kind}${path}${name}`, type);
  }
  const arns: ReadonlyArray<readonly [string, string]> = [
    ["PolicyArn", "AWS::IAM::Policy"],
    ["OpenIDConnectProviderArn", "AWS::IAM::OIDCProvider"],
    ["SAMLProviderArn", "AWS::IAM::SAMLProvider"],
  ];
  for (const [member, type] of arns) {
    const arn = stringMember(params, member);
    if (arn !== undefined) resources.add(arn, type);
  }
}

/** EC2 id parameters (singular or `.N` lists) → ARN resource kind, type, and whether the ARN has an account. */
const EC2_ID_PARAMETERS: ReadonlyArray<readonly [string, string, string, boolean]> = [
  ["InstanceId", "instance", "AWS::EC2::Instance", true],
  ["VolumeId", "volume", "AWS::EC2::Volume", true],
  ["GroupId", "security-group", "AWS::EC2::SecurityGroup", true],
  ["SecurityGroupId", "security-group", "AWS::EC2::SecurityGroup", true],
  ["VpcId", "vpc", "AWS::EC2::VPC", true],
  ["SubnetId", "subnet", "AWS::EC2::Subnet", true],
  ["NetworkInterfaceId", "network-interface", "AWS::EC2::NetworkInterface", true],
  ["ImageId", "image", "AWS::EC2::Image", false],
  ["SnapshotId", "snapshot", "AWS::EC2::Snapshot", false],
];

function addEc2Resources(
  resources: ResourceList,
  fields: ReadonlyArray<readonly [string, string]>,
  partition: string,
  region: string,
  accountId: string,
): void {
  for (const [member, kind, type, hasAccount] of EC2_ID_PARAMETERS) {
    const pattern = new RegExp(`^${member}(\\.\\d+)?$`);
    for (const [name, value] of fields) {
      if (value === "" || !pattern.test(name)) continue;
      resources.add(`arn:${partition}:ec2:${region}:${hasAccount ? accountId : ""}:${kind}/${value}`, type);
    }
  }
}
