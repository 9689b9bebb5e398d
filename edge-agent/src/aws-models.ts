/**
 * AWS's own API models, reduced to what classification needs (generated into
 * `src/gen/aws-models/` by `scripts/generate-aws-models.mjs` from the pinned aws-sdk v2 models),
 * with indexes for routing a request to a service and a rest operation matcher.
 *
 * Loading is lazy in two steps, so an edge process holds only the services it is asked about:
 * `index.json` (every service's routing facts: signing name, endpoint prefix, target prefix,
 * protocols, ≈ 37 KB) is read on the first {@link awsModels} call; a service's operations
 * (`<model key>.json`) the first time its `operations`, `restOperations` or `subresources` are
 * read, synchronously (a few KB to 35 KB, well under a millisecond, once per service and process).
 *
 * The files are read from `../src/gen/aws-models/` relative to this module, a path that resolves
 * to the same directory from `src/` (tests) and from `dist/` (the built package ships `src/gen`).
 */
import { readFileSync } from "node:fs";

/** Protocol names as in the models' metadata. */
export type ModelProtocol = "rest-xml" | "rest-json" | "json" | "query" | "ec2" | "smithy-rpc-v2-cbor";

/** One `{Label}` / `{Label+}` / literal segment of a rest path template. */
type Segment =
  | { kind: "literal"; value: string }
  | { kind: "label"; name: string }
  | { kind: "greedy"; name: string }
  | { kind: "pattern"; regex: RegExp; names: string[] };

/** The HTTP binding of a rest operation. */
export interface RestBinding {
  method: string;
  segments: readonly Segment[];
  /** Literal query keys of the request URI (`?uploads`, `?list-type=2`); `undefined` value: any. */
  literalQuery: ReadonlyArray<readonly [string, string | undefined]>;
}

/** One operation of a service model. */
export interface AwsOperationModel {
  name: string;
  /** rest protocols only. */
  http?: RestBinding;
  /** uri label name → member name, where they differ. */
  labels: Readonly<Record<string, string>>;
  /** querystring key → member name. */
  queryMembers: Readonly<Record<string, string>>;
  requiredQuery: readonly string[];
  /** Lower-case header names. */
  requiredHeaders: readonly string[];
  /** Member bound to the whole HTTP body, if any. */
  payload?: string;
  /** Whether the payload is a blob/string (not a JSON/XML structure). */
  payloadIsBlob: boolean;
  /** Deprecated in the model (loses ties to the operation that replaced it). */
  deprecated: boolean;
  /** Endpoint host prefix, e.g. `"data-"` or `"{AccountId}."`. */
  hostPrefix?: string;
  /** Member paths marked sensitive (segments; `*` = any map key). */
  sensitiveRequest: ReadonlyArray<readonly string[]>;
  sensitiveResponse: ReadonlyArray<readonly string[]>;
}

/** One AWS service (newest API version in the pinned models). */
export interface AwsServiceModel {
  /** aws-sdk model key, e.g. `"s3control"`, `"sesv2"`, `"cloudwatch"`. */
  readonly key: string;
  /** Smithy serviceId, e.g. `"S3 Control"`. */
  readonly serviceId: string;
  readonly protocol: ModelProtocol;
  /** All protocols the service accepts (the primary one first). */
  readonly protocols: readonly ModelProtocol[];
  readonly signingName: string;
  readonly endpointPrefix: string;
  readonly apiVersion: string;
  /** awsJson / RPC v2 target prefix, e.g. `"DynamoDB_20120810"`. */
  readonly targetPrefix?: string;
  readonly jsonVersion?: string;
  /** Global endpoint host for the `aws` partition (IAM, Route 53, CloudFront ...). */
  readonly globalEndpoint?: string;
  /** Operations by name (this and the next two read the service's model file on first use). */
  readonly operations: ReadonlyMap<string, AwsOperationModel>;
  /** Rest operations by HTTP method. */
  readonly restOperations: ReadonlyMap<string, readonly AwsOperationModel[]>;
  /** Literal query keys of any rest operation (S3's sub-resources: `uploads`, `acl`, `tagging` ...). */
  readonly subresources: ReadonlySet<string>;
}

/** A rest operation matched against a request, with its bound uri labels. */
export interface RestMatch {
  service: AwsServiceModel;
  operation: AwsOperationModel;
  /** Decoded label values by label name. */
  labels: Record<string, string>;
  score: number;
}

/** The indexed models. */
export interface AwsModels {
  services: readonly AwsServiceModel[];
  /** Services by signing name, the one whose key/endpoint prefix equals the name first. */
  bySigningName(name: string): readonly AwsServiceModel[];
  /** Services by awsJson/RPC v2 target prefix. */
  byTargetPrefix(prefix: string): readonly AwsServiceModel[];
  /** Service for a `/svc/<id>/` endpoint prefix: serviceId (`secrets-manager`, `S3_Control`), key or endpoint prefix. */
  byAlias(id: string): AwsServiceModel | undefined;
  byKey(key: string): AwsServiceModel | undefined;
}

interface RawOperation {
  h?: string;
  l?: Record<string, string>;
  q?: Record<string, string>;
  rq?: string[];
  rh?: string[];
  pl?: string;
  pb?: number;
  hp?: string;
  d?: number;
  si?: string[];
  so?: string[];
}

/** One service's routing facts (`index.json`). */
interface RawService {
  k: string;
  id: string;
  p: ModelProtocol;
  ps?: ModelProtocol[];
  sn: string;
  ep: string;
  v: string;
  tp?: string;
  jv?: string;
  g?: string;
}

/** One service's operations (`<model key>.json`). */
interface RawOperations {
  k: string;
  o: Record<string, RawOperation>;
}

/** Where the generated models live, relative to this module (works from `src/` and `dist/`). */
export const AWS_MODELS_URL = new URL("../src/gen/aws-models/", import.meta.url);

let cached: AwsModels | undefined;

/** The models: the routing index loaded on first use, each service's operations on first use of that service. */
export function awsModels(): AwsModels {
  cached ??= loadAwsModels(readFileSync(new URL("index.json", AWS_MODELS_URL), "utf8"), (key) =>
    readFileSync(new URL(`${encodeURIComponent(key)}.json`, AWS_MODELS_URL), "utf8"),
  );
  return cached;
}

/**
 * Indexes generated model JSON (exported for tests and tools): `indexJson` is `index.json`,
 * `readOperations(key)` returns `<key>.json` and is called at most once per service, the first
 * time that service's operations are needed.
 */
export function loadAwsModels(indexJson: string, readOperations: (key: string) => string): AwsModels {
  const raw = JSON.parse(indexJson) as { services: RawService[] };
  const services: AwsServiceModel[] = raw.services.map((s) => new LazyServiceModel(s, readOperations));
  const bySigning = new Map<string, AwsServiceModel[]>();
  const byTarget = new Map<string, AwsServiceModel[]>();
  const byAlias = new Map<string, AwsServiceModel>();
  const byKey = new Map<string, AwsServiceModel>();
  for (const service of services) {
    push(bySigning, service.signingName, service);
    if (service.targetPrefix !== undefined) push(byTarget, service.targetPrefix, service);
    byKey.set(service.key, service);
  }
  // Aliases in precedence order: serviceId, then model key, then endpoint prefix.
  for (const pick of [(s: AwsServiceModel) => s.serviceId, (s: AwsServiceModel) => s.key]) {
    for (const service of services) {
      const alias = normaliseAlias(pick(service));
      if (!byAlias.has(alias)) byAlias.set(alias, service);
    }
  }
  for (const list of bySigning.values()) {
    list.sort((a, b) => primaryRank(a) - primaryRank(b));
  }
  for (const service of [...bySigning.values()].map((list) => list[0])) {
    if (service !== undefined && !byAlias.has(service.endpointPrefix)) byAlias.set(service.endpointPrefix, service);
  }
  for (const service of services) {
    if (!byAlias.has(service.endpointPrefix)) byAlias.set(service.endpointPrefix, service);
  }
  return {
    services,
    bySigningName: (name) => bySigning.get(name) ?? [],
    byTargetPrefix: (prefix) => byTarget.get(prefix) ?? [],
    byAlias: (id) => byAlias.get(normaliseAlias(id)),
    byKey: (key) => byKey.get(key),
  };
}

/** The service a shared signing name means by default: the one named like it (rds, ses, s3, ...). */
function primaryRank(service: AwsServiceModel): number {
  if (service.key === service.signingName) return 0;
  if (service.endpointPrefix === service.signingName) return 1;
  return 2;
}

function normaliseAlias(id: string): string {
  return id.toLowerCase().replace(/[\s_]+/g, "-");
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** A service whose routing facts are loaded and whose operations are read on first use. */
class LazyServiceModel implements AwsServiceModel {
  readonly key: string;
  readonly serviceId: string;
  readonly protocol: ModelProtocol;
  readonly protocols: readonly ModelProtocol[];
  readonly signingName: string;
  readonly endpointPrefix: string;
  readonly apiVersion: string;
  readonly targetPrefix?: string;
  readonly jsonVersion?: string;
  readonly globalEndpoint?: string;
  readonly #read: (key: string) => string;
  #operations: ServiceOperations | undefined;

  constructor(raw: RawService, read: (key: string) => string) {
    this.key = raw.k;
    this.serviceId = raw.id;
    this.protocol = raw.p;
    this.protocols = raw.ps !== undefined ? [raw.p, ...raw.ps.filter((p) => p !== raw.p)] : [raw.p];
    this.signingName = raw.sn;
    this.endpointPrefix = raw.ep;
    this.apiVersion = raw.v;
    if (raw.tp !== undefined) this.targetPrefix = raw.tp;
    if (raw.jv !== undefined) this.jsonVersion = raw.jv;
    if (raw.g !== undefined) this.globalEndpoint = raw.g;
    this.#read = read;
  }

  get operations(): ReadonlyMap<string, AwsOperationModel> {
    return this.#loaded().operations;
  }

  get restOperations(): ReadonlyMap<string, readonly AwsOperationModel[]> {
    return this.#loaded().restOperations;
  }

  get subresources(): ReadonlySet<string> {
    return this.#loaded().subresources;
  }

  #loaded(): ServiceOperations {
    this.#operations ??= toServiceOperations((JSON.parse(this.#read(this.key)) as RawOperations).o);
    return this.#operations;
  }
}

interface ServiceOperations {
  operations: Map<string, AwsOperationModel>;
  restOperations: Map<string, AwsOperationModel[]>;
  subresources: Set<string>;
}

function toServiceOperations(raw: Record<string, RawOperation>): ServiceOperations {
  const operations = new Map<string, AwsOperationModel>();
  const restOperations = new Map<string, AwsOperationModel[]>();
  const subresources = new Set<string>();
  for (const [name, op] of Object.entries(raw)) {
    const operation: AwsOperationModel = {
      name,
      labels: op.l ?? {},
      queryMembers: op.q ?? {},
      requiredQuery: op.rq ?? [],
      requiredHeaders: op.rh ?? [],
      payloadIsBlob: op.pb === 1,
      deprecated: op.d === 1,
      sensitiveRequest: (op.si ?? []).map((p) => p.split(".")),
      sensitiveResponse: (op.so ?? []).map((p) => p.split(".")),
    };
    if (op.pl !== undefined) operation.payload = op.pl;
    if (op.hp !== undefined) operation.hostPrefix = op.hp;
    if (op.h !== undefined) {
      operation.http = parseBinding(op.h);
      push(restOperations, operation.http.method, operation);
      for (const [key] of operation.http.literalQuery) subresources.add(key);
    }
    operations.set(name, operation);
  }
  return { operations, restOperations, subresources };
}

/** Parses `"PUT /{Bucket}/{Key+}?uploads"`. */
export function parseBinding(text: string): RestBinding {
  const space = text.indexOf(" ");
  const method = text.slice(0, space);
  const uri = text.slice(space + 1);
  const question = uri.indexOf("?");
  const pathPart = question === -1 ? uri : uri.slice(0, question);
  const queryPart = question === -1 ? "" : uri.slice(question + 1);
  // A trailing slash is not a segment (`/2015-03-31/functions/` ≡ `/2015-03-31/functions`).
  const parts = splitPath(pathPart);
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  const segments = parts.map(parseSegment);
  const literalQuery: Array<readonly [string, string | undefined]> = [];
  for (const pair of queryPart.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    literalQuery.push(eq === -1 ? [pair, undefined] : [pair.slice(0, eq), pair.slice(eq + 1)]);
  }
  return { method, segments, literalQuery };
}

/** `/a/b/` → `["a", "b", ""]`; `/` → `[]`. */
export function splitPath(path: string): string[] {
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  return trimmed === "" ? [] : trimmed.split("/");
}

function parseSegment(segment: string): Segment {
  const whole = /^\{([^}]+?)(\+?)\}$/.exec(segment);
  if (whole !== null) {
    const name = whole[1] as string;
    return whole[2] === "+" ? { kind: "greedy", name } : { kind: "label", name };
  }
  if (!segment.includes("{")) return { kind: "literal", value: segment };
  const names: string[] = [];
  const source = segment
    .split(/(\{[^}]+\})/)
    .map((part) => {
      const label = /^\{([^}]+)\}$/.exec(part);
      if (label === null) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(label[1] as string);
      return "(.+?)";
    })
    .join("");
  return { kind: "pattern", regex: new RegExp(`^${source}$`), names };
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

/** What a rest request looks like to the matcher. */
export interface RestRequest {
  method: string;
  /** Raw path segments (see {@link splitPath}). */
  segments: readonly string[];
  /** Decoded query pairs. */
  query: ReadonlyArray<readonly [string, string]>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * Finds the most specific rest operation of `service` for a request: method and path template
 * must match, every literal query key of the URI and every required querystring/header member
 * must be present. Specificity: literal path segments, then single labels, then literal query
 * keys, then required members present (so `?uploads` beats `{Key+}`, CopyObject beats PutObject);
 * deprecated operations lose ties. A query key that is a sub-resource of another operation
 * (`DELETE /b?acl`) must be one of the operation's own literal or querystring keys, else the
 * request matches nothing rather than the plain `DeleteBucket`.
 */
export function matchRestOperation(service: AwsServiceModel, request: RestRequest): RestMatch | undefined {
  const all = service.restOperations.get(request.method.toUpperCase());
  if (all === undefined) return undefined;
  // Without a query only operations without literal query keys can match (4 of S3's 43 GETs).
  const candidates = request.query.length === 0 ? withoutLiteralQuery(all) : all;
  const queryKeys = new Set(request.query.map(([key]) => key));
  const subresources = [...queryKeys].filter((key) => service.subresources.has(key));
  // Decoded once here rather than per candidate operation.
  const decodedSegments = request.segments.map(safeDecode);
  let best: RestMatch | undefined;
  for (const operation of candidates) {
    const binding = operation.http as RestBinding;
    // The query and header conditions first: they are cheap and rule out most candidates
    // (S3's ?acl, ?tagging, ... operations) before the path is matched.
    let literalQuery = 0;
    let ok = true;
    for (const [key, value] of binding.literalQuery) {
      const present =
        value === undefined ? queryKeys.has(key) : request.query.some(([k, v]) => k === key && v === value);
      if (!present) {
        ok = false;
        break;
      }
      literalQuery++;
    }
    if (!ok) continue;
    // (Each test only when there is something to test: no closure per candidate otherwise.)
    if (operation.requiredQuery.length > 0 && !operation.requiredQuery.every((key) => queryKeys.has(key))) continue;
    if (subresources.length > 0) {
      const own = (key: string) =>
        binding.literalQuery.some(([k]) => k === key) || Object.hasOwn(operation.queryMembers, key);
      if (!subresources.every(own)) continue;
    }
    if (
      operation.requiredHeaders.length > 0 &&
      !operation.requiredHeaders.every((name) => request.headers[name] !== undefined)
    ) {
      continue;
    }
    const bound = matchSegments(binding.segments, decodedSegments);
    if (bound === undefined) continue;
    const required = operation.requiredQuery.length + operation.requiredHeaders.length;
    const score =
      bound.literals * 1_000_000 +
      bound.singles * 10_000 +
      literalQuery * 100 +
      required * 2 -
      (operation.deprecated ? 1 : 0);
    if (best === undefined || score > best.score) {
      best = { service, operation, labels: bound.labels, score };
    }
  }
  return best;
}

const withoutLiteralQueryOf = new WeakMap<readonly AwsOperationModel[], readonly AwsOperationModel[]>();

function withoutLiteralQuery(operations: readonly AwsOperationModel[]): readonly AwsOperationModel[] {
  let subset = withoutLiteralQueryOf.get(operations);
  if (subset === undefined) {
    subset = operations.filter((o) => o.http === undefined || o.http.literalQuery.length === 0);
    withoutLiteralQueryOf.set(operations, subset);
  }
  return subset;
}

/** Matches decoded path segments (a raw segment is empty exactly when its decoding is). */
function matchSegments(
  template: readonly Segment[],
  path: readonly string[],
): { labels: Record<string, string>; literals: number; singles: number } | undefined {
  // A trailing slash is not a segment, except inside a greedy label (S3 key "dir/").
  const trimmed = path.length > 0 && path[path.length - 1] === "" ? path.slice(0, -1) : path;
  const labels: Record<string, string> = {};
  let literals = 0;
  let singles = 0;
  for (let i = 0; i < template.length; i++) {
    const segment = template[i] as Segment;
    if (segment.kind === "greedy") {
      if (i !== template.length - 1 || i >= trimmed.length) return undefined;
      const rest = path.slice(i);
      if (rest.every((part) => part === "")) return undefined;
      // Decoded per segment so an encoded "%2F" and a literal "/" both end up as "/".
      labels[segment.name] = rest.join("/");
      return { labels, literals, singles };
    }
    const actual = trimmed[i];
    if (actual === undefined) return undefined;
    switch (segment.kind) {
      case "literal":
        if (actual !== segment.value) return undefined;
        literals++;
        break;
      case "label":
        if (actual === "") return undefined;
        labels[segment.name] = actual;
        singles++;
        break;
      case "pattern": {
        const m = segment.regex.exec(actual);
        if (m === null) return undefined;
        segment.names.forEach((name, j) => {
          labels[name] = m[j + 1] as string;
        });
        literals++;
        break;
      }
    }
  }
  return trimmed.length === template.length ? { labels, literals, singles } : undefined;
}
