/**
 * Classification of an incoming AWS API request: which service and operation it is, whether it
 * only reads, which resources it touches and its (redacted) parameters, in CloudTrail's terms.
 *
 * The operation is always derived from what AWS itself would act on (method, path, sub-resources,
 * `x-amz-target`, `Action`), never from client hints such as the SDK's `x-id` query parameter, so a
 * client cannot make a write look like a read. Classification never throws: malformed input
 * yields `"Unknown"` or `null` parameters.
 */
import { redactSensitive } from "./sensitive-redaction.js";

/** AWS wire protocols, named as in the Smithy protocol traits. */
export type AwsProtocol = "restXml" | "restJson" | "awsJson1_0" | "awsJson1_1" | "awsQuery" | "ec2Query";

/** What the classifier needs to know about a request (after SigV4 verification). */
export interface ClassifyInput {
  /** HTTP method, e.g. `"GET"` (case-insensitive). */
  method: string;
  /** Path exactly as on the wire (still percent-encoded), without the query, e.g. `/my-bucket/dir/a%20b.txt`. */
  rawPath: string;
  /** Decoded query pairs in order; a bare `?uploads` is `["uploads", ""]`. */
  query: ReadonlyArray<readonly [string, string]>;
  /** Request headers with lower-case names (node's `IncomingHttpHeaders`). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Service from the SigV4 credential scope, e.g. `"s3"`, `"dynamodb"`, `"sts"`. */
  signingName: string;
  /** Region from the SigV4 credential scope, e.g. `"eu-west-1"`. */
  region: string;
  /** Upstream AWS account id used in ARNs; `""` leaves the ARN account field empty. */
  accountId: string;
  /** Whole request body for non-S3 services (JSON or form-encoded); `undefined` for S3. */
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
  /** Region; global IAM is recorded in its partition's home region (`us-east-1`) like CloudTrail. */
  awsRegion: string;
  /** Whether the operation only reads (unknown operations are not read-only). */
  readOnly: boolean;
  /** Wire protocol of the request (and hence of its response and errors). */
  protocol: AwsProtocol;
  /** Resources named by the request, without duplicates. */
  resources: AwsResource[];
  /** Request parameters like CloudTrail's, already redacted; `null` when there are none or the body is unreadable. */
  requestParameters: Record<string, unknown> | null;
}

const UNKNOWN = "Unknown";

/** Classifies one AWS API request. Never throws. */
export function classifyRequest(input: ClassifyInput): Classification {
  const service = normaliseService(input.signingName);
  switch (service) {
    case "s3":
      return classifyS3(input);
    case "dynamodb":
      return classifyJson(input, service, "awsJson1_0");
    case "secretsmanager":
      return classifyJson(input, service, "awsJson1_1");
    case "sts":
    case "iam":
      return classifyQuery(input, service, "awsQuery");
    case "ec2":
      return classifyQuery(input, service, "ec2Query");
    default:
      return classifyGeneric(input, service);
  }
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

/** ARN partition for a region (`aws`, `aws-cn`, `aws-us-gov`, ...). */
function partitionOf(region: string): string {
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

const READ_ONLY_PREFIX = /^(Get|List|Describe|Head|Query|Scan|BatchGet|Lookup|Search)([A-Z0-9]|$)/;

/** Generic read-only heuristic on the operation name. */
function isReadOnlyOperation(operation: string): boolean {
  return operation !== UNKNOWN && READ_ONLY_PREFIX.test(operation);
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
  // defineProperty keeps a parameter named "__proto__" as plain data.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function redactedRecord(service: string, operation: string, value: Record<string, unknown>): Record<string, unknown> {
  const redacted = redactSensitive(service, operation, value, "request");
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

// ---------------------------------------------------------------------------------------------
// S3 (rest-xml, path-style addressing)

type MethodTable = Readonly<Partial<Record<string, string>>>;

/**
 * Bucket sub-resources in precedence order, with the operation per method. Sub-resources whose
 * operation depends on an `id` parameter are handled separately (see BUCKET_CONFIG_SUBRESOURCES).
 */
const BUCKET_SUBRESOURCES: ReadonlyArray<readonly [string, MethodTable]> = [
  ["uploads", { GET: "ListMultipartUploads" }],
  ["delete", { POST: "DeleteObjects" }],
  ["versions", { GET: "ListObjectVersions" }],
  ["location", { GET: "GetBucketLocation" }],
  ["tagging", { GET: "GetBucketTagging", PUT: "PutBucketTagging", DELETE: "DeleteBucketTagging" }],
  ["policyStatus", { GET: "GetBucketPolicyStatus" }],
  ["policy", { GET: "GetBucketPolicy", PUT: "PutBucketPolicy", DELETE: "DeleteBucketPolicy" }],
  ["acl", { GET: "GetBucketAcl", PUT: "PutBucketAcl" }],
  ["versioning", { GET: "GetBucketVersioning", PUT: "PutBucketVersioning" }],
  ["cors", { GET: "GetBucketCors", PUT: "PutBucketCors", DELETE: "DeleteBucketCors" }],
  [
    "lifecycle",
    { GET: "GetBucketLifecycleConfiguration", PUT: "PutBucketLifecycleConfiguration", DELETE: "DeleteBucketLifecycle" },
  ],
  ["encryption", { GET: "GetBucketEncryption", PUT: "PutBucketEncryption", DELETE: "DeleteBucketEncryption" }],
  ["website", { GET: "GetBucketWebsite", PUT: "PutBucketWebsite", DELETE: "DeleteBucketWebsite" }],
  ["notification", { GET: "GetBucketNotificationConfiguration", PUT: "PutBucketNotificationConfiguration" }],
  ["logging", { GET: "GetBucketLogging", PUT: "PutBucketLogging" }],
  [
    "ownershipControls",
    { GET: "GetBucketOwnershipControls", PUT: "PutBucketOwnershipControls", DELETE: "DeleteBucketOwnershipControls" },
  ],
  [
    "publicAccessBlock",
    { GET: "GetPublicAccessBlock", PUT: "PutPublicAccessBlock", DELETE: "DeletePublicAccessBlock" },
  ],
  ["replication", { GET: "GetBucketReplication", PUT: "PutBucketReplication", DELETE: "DeleteBucketReplication" }],
  ["requestPayment", { GET: "GetBucketRequestPayment", PUT: "PutBucketRequestPayment" }],
  ["accelerate", { GET: "GetBucketAccelerateConfiguration", PUT: "PutBucketAccelerateConfiguration" }],
  ["object-lock", { GET: "GetObjectLockConfiguration", PUT: "PutObjectLockConfiguration" }],
  [
    "metadataTable",
    {
      GET: "GetBucketMetadataTableConfiguration",
      POST: "CreateBucketMetadataTableConfiguration",
      DELETE: "DeleteBucketMetadataTableConfiguration",
    },
  ],
  ["session", { GET: "CreateSession" }],
];

/** `?analytics&id=x` → Get/Put/Delete...Configuration; `GET ?analytics` without id → List...Configurations. */
const BUCKET_CONFIG_SUBRESOURCES: ReadonlyArray<readonly [string, string]> = [
  ["analytics", "Analytics"],
  ["metrics", "Metrics"],
  ["inventory", "Inventory"],
  ["intelligent-tiering", "IntelligentTiering"],
];

const OBJECT_SUBRESOURCES: ReadonlyArray<readonly [string, MethodTable]> = [
  ["uploads", { POST: "CreateMultipartUpload" }],
  ["tagging", { GET: "GetObjectTagging", PUT: "PutObjectTagging", DELETE: "DeleteObjectTagging" }],
  ["acl", { GET: "GetObjectAcl", PUT: "PutObjectAcl" }],
  ["retention", { GET: "GetObjectRetention", PUT: "PutObjectRetention" }],
  ["legal-hold", { GET: "GetObjectLegalHold", PUT: "PutObjectLegalHold" }],
  ["attributes", { GET: "GetObjectAttributes" }],
  ["restore", { POST: "RestoreObject" }],
  ["select", { POST: "SelectObjectContent" }],
  ["torrent", { GET: "GetObjectTorrent" }],
];

function classifyS3(input: ClassifyInput): Classification {
  const method = input.method.toUpperCase();
  const partition = partitionOf(input.region);
  const queryKeys = new Set(input.query.map(([key]) => key));
  const copySource = headerValue(input.headers, "x-amz-copy-source");
  const host = headerValue(input.headers, "host");

  const { bucket, key } = splitS3Path(input.rawPath);
  let eventName: string;
  if (bucket === undefined) {
    eventName = method === "GET" ? "ListBuckets" : UNKNOWN;
  } else if (key === undefined) {
    eventName = s3BucketOperation(method, queryKeys, input.query);
  } else {
    eventName = s3ObjectOperation(method, queryKeys, copySource !== undefined);
  }

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
    service: "s3",
    eventSource: "s3.amazonaws.com",
    eventName,
    awsRegion: input.region,
    readOnly: method === "GET" || method === "HEAD",
    protocol: "restXml",
    resources: resources.items,
    requestParameters: nonEmptyOrNull(redactedRecord("s3", eventName, params)),
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

function s3BucketOperation(
  method: string,
  queryKeys: ReadonlySet<string>,
  query: ReadonlyArray<readonly [string, string]>,
): string {
  for (const [subresource, table] of BUCKET_SUBRESOURCES) {
    if (queryKeys.has(subresource)) return table[method] ?? UNKNOWN;
  }
  for (const [subresource, name] of BUCKET_CONFIG_SUBRESOURCES) {
    if (!queryKeys.has(subresource)) continue;
    if (!queryKeys.has("id")) return method === "GET" ? `ListBucket${name}Configurations` : UNKNOWN;
    const verb = method === "GET" ? "Get" : method === "PUT" ? "Put" : method === "DELETE" ? "Delete" : undefined;
    return verb === undefined ? UNKNOWN : `${verb}Bucket${name}Configuration`;
  }
  switch (method) {
    case "GET":
      return query.some(([name, value]) => name === "list-type" && value === "2") ? "ListObjectsV2" : "ListObjects";
    case "HEAD":
      return "HeadBucket";
    case "PUT":
      return "CreateBucket";
    case "DELETE":
      return "DeleteBucket";
    default:
      // e.g. browser-form POST uploads, which the edge cannot verify as SigV4 header auth.
      return UNKNOWN;
  }
}

function s3ObjectOperation(method: string, queryKeys: ReadonlySet<string>, hasCopySource: boolean): string {
  if (queryKeys.has("uploadId")) {
    switch (method) {
      case "PUT":
        return hasCopySource ? "UploadPartCopy" : "UploadPart";
      case "POST":
        return "CompleteMultipartUpload";
      case "DELETE":
        return "AbortMultipartUpload";
      case "GET":
        return "ListParts";
      default:
        return UNKNOWN;
    }
  }
  for (const [subresource, table] of OBJECT_SUBRESOURCES) {
    if (queryKeys.has(subresource)) return table[method] ?? UNKNOWN;
  }
  switch (method) {
    case "GET":
      return "GetObject";
    case "HEAD":
      return "HeadObject";
    case "PUT":
      return hasCopySource ? "CopyObject" : "PutObject";
    case "DELETE":
      return "DeleteObject";
    default:
      return UNKNOWN;
  }
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
// JSON protocols (x-amz-target)

const DYNAMODB_READ_ONLY: ReadonlySet<string> = new Set(["Query", "Scan", "BatchGetItem", "TransactGetItems"]);

function operationFromTarget(target: string | undefined): string {
  if (target === undefined) return UNKNOWN;
  const operation = target.slice(target.lastIndexOf(".") + 1);
  return isOperationName(operation) ? operation : UNKNOWN;
}

function jsonProtocolFromContentType(headers: ClassifyInput["headers"]): AwsProtocol {
  const contentType = headerValue(headers, "content-type")?.toLowerCase() ?? "";
  return contentType.includes("application/x-amz-json-1.0") ? "awsJson1_0" : "awsJson1_1";
}

function classifyJson(input: ClassifyInput, service: string, protocol: AwsProtocol): Classification {
  const target = headerValue(input.headers, "x-amz-target");
  const eventName = operationFromTarget(target);
  const body = parseJsonObject(input.body);
  const region = input.region;
  const partition = partitionOf(region);
  const resources = new ResourceList();

  if (body) {
    if (service === "dynamodb") {
      addDynamoDbResources(resources, body, partition, region, input.accountId);
    } else if (service === "secretsmanager") {
      addSecretsManagerResources(resources, body, partition, region, input.accountId);
    }
  }

  let readOnly = isReadOnlyOperation(eventName);
  if (service === "dynamodb") {
    readOnly = /^(Get|List|Describe)([A-Z]|$)/.test(eventName) || DYNAMODB_READ_ONLY.has(eventName);
  }

  return {
    service,
    eventSource: `${service}.amazonaws.com`,
    eventName,
    awsRegion: region,
    readOnly,
    protocol,
    resources: resources.items,
    requestParameters: body ? nonEmptyOrNull(redactedRecord(service, eventName, body)) : null,
  };
}

function addDynamoDbResources(
  resources: ResourceList,
  body: Record<string, unknown>,
  partition: string,
  region: string,
  accountId: string,
): void {
  const addTable = (name: unknown): void => {
    if (typeof name !== "string" || name === "") return;
    // TableName may be given as a table ARN.
    const arn = name.startsWith("arn:") ? name : `arn:${partition}:dynamodb:${region}:${accountId}:table/${name}`;
    resources.add(arn, "AWS::DynamoDB::Table");
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
  const streamArn = stringMember(body, "StreamArn");
  if (streamArn?.startsWith("arn:")) resources.add(streamArn, "AWS::DynamoDB::Stream");
  const resourceArn = stringMember(body, "ResourceArn");
  if (resourceArn?.startsWith("arn:")) resources.add(resourceArn, "AWS::DynamoDB::Table");
}

function addSecretsManagerResources(
  resources: ResourceList,
  body: Record<string, unknown>,
  partition: string,
  region: string,
  accountId: string,
): void {
  const addSecret = (id: unknown): void => {
    if (typeof id !== "string" || id === "") return;
    const arn = id.startsWith("arn:") ? id : `arn:${partition}:secretsmanager:${region}:${accountId}:secret:${id}`;
    resources.add(arn, "AWS::SecretsManager::Secret");
  };
  addSecret(body.SecretId ?? body.Name ?? body.ARN);
  if (Array.isArray(body.SecretIdList)) {
    for (const id of body.SecretIdList) addSecret(id);
  }
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

function classifyQuery(input: ClassifyInput, service: string, protocol: AwsProtocol): Classification {
  const fields = queryFields(input);
  // Conflicting Actions (query string vs body) must not let the audit show the harmless one.
  const actions = new Set(fields.filter(([name]) => name === "Action").map(([, value]) => value));
  const action = actions.size === 1 ? [...actions][0] : undefined;
  const eventName = action !== undefined && isOperationName(action) ? action : UNKNOWN;

  const params: Record<string, unknown> = {};
  for (const [name, value] of fields) {
    if (name === "Action" || name === "Version") continue;
    setOwn(params, name, value);
  }

  const partition = partitionOf(input.region);
  let awsRegion = input.region;
  const resources = new ResourceList();
  if (service === "iam") {
    awsRegion = globalRegionOf(partition, input.region);
    addIamResources(resources, params, partition, input.accountId);
  } else if (service === "sts") {
    const roleArn = stringMember(params, "RoleArn");
    if (roleArn !== undefined) resources.add(roleArn, "AWS::IAM::Role");
  } else if (service === "ec2") {
    addEc2Resources(resources, fields, partition, input.region, input.accountId);
  }

  return {
    service,
    eventSource: `${service}.amazonaws.com`,
    eventName,
    awsRegion,
    readOnly: isReadOnlyOperation(eventName),
    protocol,
    resources: resources.items,
    requestParameters: nonEmptyOrNull(redactedRecord(service, eventName, params)),
  };
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

// ---------------------------------------------------------------------------------------------
// Any other service

function classifyGeneric(input: ClassifyInput, service: string): Classification {
  const target = headerValue(input.headers, "x-amz-target");
  if (target !== undefined) {
    return classifyJson(input, service, jsonProtocolFromContentType(input.headers));
  }
  const hasAction = queryFields(input).some(([name]) => name === "Action");
  if (hasAction) {
    return classifyQuery(input, service, "awsQuery");
  }
  // rest-json services (Lambda, ...) need per-service routing tables; not classified yet.
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
