/**
 * The client × service × operation × mode compatibility matrix (issue #3).
 *
 * Every row below is one call of one real client; it runs twice, once per mode (COMPAT_MODES):
 * `endpoint` (the client pointed at the edge with AWS_ENDPOINT_URL / --endpoint-url / `endpoint`) and
 * `proxy` (no endpoint override: AWS's own host names, virtual-hosted S3 where the client defaults to it,
 * through the edge's CONNECT proxy with HTTPS_PROXY, trusting the Tollgate CA from $TOLLGATE_HOME/ca.pem).
 * matrix.e2e.test.ts runs them against one shared `tollgate dev --proxy-listen` per upstream kind (a
 * signature-verifying moto, or for moto's own false alarms a non-verifying one), each (row, mode) under
 * its own principal `compat-<n>`; a row passes when the call succeeds, the output holds `output`, and the
 * audit trail holds exactly the expected events, each allowed, without an errorCode, listing the expected
 * resources (`{account}` in an ARN may also be blank; a trailing `*` matches any suffix), and, in proxy
 * mode, each received over the proxy's TLS with an AWS host name (tlsDetails.clientProvidedHostHeader).
 *
 * Placeholders filled per run: {n} (row number), {bucket} (has fixture.txt = "fixture-content"),
 * {table} (item pk=k1, v=fixture), {queueUrl} (the edge's URL in endpoint mode, sqs.us-east-1.amazonaws.com
 * in proxy mode), {topicArn}, {secret} ("s3cr3t-value"), {param} ("param-value"), {keyId}, {function},
 * {roleArn}, {account}, {zipFile}, {smallFile}, {bigFile} (9 MiB), {workDir}.
 *
 * `pending: "<reason>"` (or `pendingFor: { <client> | <mode> | "<client>/<mode>": "<reason>" }`) marks rows
 * that cannot pass yet: they stay in the table and in MATRIX.md with their reason but are not run;
 * COMPAT_INCLUDE_PENDING=1 runs them too and reports which would pass now. Flip a row by deleting it.
 */
import {
  type Boto3Call,
  type CliCall,
  COMPAT_MODES,
  type CompatCase,
  type CompatClient,
  type CompatNeeds,
  type CompatValue,
  type SdkCall,
} from "./compat-case.js";

const MiB = 1024 * 1024;

/** A row as written below; `only` limits a row shared by the aws CLI v1 and v2 tables to one of them. */
type Row = Omit<CompatCase, "client" | "mode" | "needs"> & { needs?: CompatNeeds; only?: CompatClient };
type Input = { [key: string]: CompatValue };

const sdk = (client: string, command: string, input: Input = {}, extra: Partial<SdkCall> = {}): SdkCall => ({
  kind: "sdk",
  client,
  command,
  input,
  ...extra,
});
const cli = (...args: string[]): CliCall => ({ kind: "cli", args });
const boto3 = (service: string, method: string, params: Input = {}, extra: Partial<Boto3Call> = {}): Boto3Call => ({
  kind: "boto3",
  service,
  method,
  params,
  ...extra,
});

const S3_OBJECT = "arn:aws:s3:::{bucket}/fixture.txt";
const TABLE_ARN = "arn:aws:dynamodb:us-east-1:{account}:table/{table}";
const QUEUE_ARN = "arn:aws:sqs:us-east-1:{account}:compat-fx";
const KEY_ARN = "arn:aws:kms:us-east-1:{account}:key/{keyId}";
const SECRET_ARN = "arn:aws:secretsmanager:us-east-1:{account}:secret:{secret}*";
const PARAM_ARN = "arn:aws:ssm:us-east-1:{account}:parameter/compat/fx";
const FUNCTION_ARN = "arn:aws:lambda:us-east-1:{account}:function:{function}";

/** moto's own verifier rejects these even when called directly (SERVICES.md). */
const MOTO_FALSE_ALARM: CompatNeeds = "non-verifying-moto";

// botocore (boto3, aws CLI v1) presigns S3 with SigV2 (AWSAccessKeyId=, Signature=, Expires=) unless
// `signature_version = s3v4` is configured; AWS deprecated SigV2 and the edge accepts SigV4 only. It refuses
// SigV2 as S3 does in SigV4-only regions: HTTP 400 InvalidRequest "The authorization mechanism you have
// provided is not supported. Please use AWS4-HMAC-SHA256.", audited as a DENY under the claimed principal.
const SIGV2_REFUSED = { refusedWith: "InvalidRequest", output: "<Code>InvalidRequest</Code>" } as const;

// ───────────────────────────── AWS SDK for JavaScript v3 ─────────────────────────────
// biome-ignore format: one row per line
const sdkRows: Row[] = [
  // S3 (rest-xml); path style unless noted
  { service: "s3", operation: "ListBuckets", call: sdk("S3", "ListBuckets"), events: "ListBuckets", output: "{bucket}" },
  { service: "s3", operation: "CreateBucket", call: sdk("S3", "CreateBucket", { Bucket: "compat-{n}" }), events: "CreateBucket", resources: ["arn:aws:s3:::compat-{n}"] },
  { service: "s3", operation: "PutObject", call: sdk("S3", "PutObject", { Bucket: "{bucket}", Key: "sdk/{n}.txt", Body: "hello {n}" }), events: "PutObject", resources: ["arn:aws:s3:::{bucket}/sdk/{n}.txt"] },
  { service: "s3", operation: "GetObject", call: sdk("S3", "GetObject", { Bucket: "{bucket}", Key: "fixture.txt" }), events: "GetObject", resources: [S3_OBJECT], output: "fixture-content" },
  { service: "s3", operation: "HeadObject", call: sdk("S3", "HeadObject", { Bucket: "{bucket}", Key: "fixture.txt" }), events: "HeadObject", resources: [S3_OBJECT] },
  { service: "s3", operation: "ListObjectsV2", call: sdk("S3", "ListObjectsV2", { Bucket: "{bucket}" }), events: "ListObjectsV2", output: "fixture.txt" },
  { service: "s3", operation: "PutObjectTagging", call: sdk("S3", "PutObjectTagging", { Bucket: "{bucket}", Key: "fixture.txt", Tagging: { TagSet: [{ Key: "k", Value: "v" }] } }), events: "PutObjectTagging" },
  { service: "s3", operation: "DeleteObject", call: sdk("S3", "DeleteObject", { Bucket: "{bucket}", Key: "gone-{n}.txt" }), events: "DeleteObject" },
  { service: "s3", operation: "PutObject (stream: unsigned payload + CRC32 trailer)", call: sdk("S3", "PutObject", { Bucket: "{bucket}", Key: "stream/{n}.txt", Body: "streamed {n}" }, { bodyAsStream: true }), events: "PutObject", resources: ["arn:aws:s3:::{bucket}/stream/{n}.txt"] },
  { service: "s3", operation: "multipart Upload (lib-storage)", call: { kind: "sdk-upload", bucket: "{bucket}", key: "sdk-mpu-{n}.bin", size: 6 * MiB }, events: { CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1 } },
  { service: "s3", operation: "GetObject (virtual-hosted)", call: sdk("S3", "GetObject", { Bucket: "{bucket}", Key: "fixture.txt" }, { addressing: "virtual" }), events: "GetObject", resources: [S3_OBJECT], output: "fixture-content" },
  { service: "s3", operation: "PutObject (virtual-hosted)", call: sdk("S3", "PutObject", { Bucket: "{bucket}", Key: "vh-{n}.txt", Body: "virtual {n}" }, { addressing: "virtual" }), events: "PutObject", resources: ["arn:aws:s3:::{bucket}/vh-{n}.txt"] },
  { service: "s3", operation: "presigned GET", call: { kind: "sdk-presign", method: "GET", bucket: "{bucket}", key: "fixture.txt" }, events: "GetObject", output: "fixture-content", needs: MOTO_FALSE_ALARM },
  { service: "s3", operation: "presigned PUT", call: { kind: "sdk-presign", method: "PUT", bucket: "{bucket}", key: "presigned-{n}.txt", body: "via presigned put" }, events: "PutObject", needs: MOTO_FALSE_ALARM },
  { service: "s3", operation: "PutObject (key with + and é)", call: sdk("S3", "PutObject", { Bucket: "{bucket}", Key: "odd/a+b é {n}.txt", Body: "odd" }), events: "PutObject", needs: MOTO_FALSE_ALARM },
  // DynamoDB (awsJson 1.0)
  { service: "dynamodb", operation: "CreateTable", call: sdk("DynamoDB", "CreateTable", { TableName: "compat-{n}", AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }), events: "CreateTable", resources: ["arn:aws:dynamodb:us-east-1:{account}:table/compat-{n}"] },
  { service: "dynamodb", operation: "PutItem", call: sdk("DynamoDB", "PutItem", { TableName: "{table}", Item: { pk: { S: "sdk-{n}" } } }), events: "PutItem", resources: [TABLE_ARN] },
  { service: "dynamodb", operation: "GetItem", call: sdk("DynamoDB", "GetItem", { TableName: "{table}", Key: { pk: { S: "k1" } } }), events: "GetItem", resources: [TABLE_ARN], output: "fixture" },
  { service: "dynamodb", operation: "Query", call: sdk("DynamoDB", "Query", { TableName: "{table}", KeyConditionExpression: "pk = :k", ExpressionAttributeValues: { ":k": { S: "k1" } } }), events: "Query", resources: [TABLE_ARN] },
  { service: "dynamodb", operation: "ListTables", call: sdk("DynamoDB", "ListTables"), events: "ListTables", output: "{table}" },
  // STS (awsQuery)
  { service: "sts", operation: "GetCallerIdentity", call: sdk("STS", "GetCallerIdentity"), events: "GetCallerIdentity", output: "{account}" },
  // IAM (awsQuery; global, signed with the client's region)
  { service: "iam", operation: "ListUsers", call: sdk("IAM", "ListUsers"), events: "ListUsers", output: "tollgate-demo" },
  { service: "iam", operation: "CreateUser", call: sdk("IAM", "CreateUser", { UserName: "compat-{n}" }), events: "CreateUser", resources: ["arn:aws:iam::{account}:user/compat-{n}"] },
  { service: "iam", operation: "GetRole (client region eu-west-1)", call: sdk("IAM", "GetRole", { RoleName: "compat-lambda-role" }, { region: "eu-west-1" }), events: "GetRole", resources: ["arn:aws:iam::{account}:role/compat-lambda-role"], output: "{roleArn}" },
  // EC2 (ec2Query)
  { service: "ec2", operation: "DescribeInstances", call: sdk("EC2", "DescribeInstances"), events: "DescribeInstances" },
  { service: "ec2", operation: "DescribeVpcs", call: sdk("EC2", "DescribeVpcs"), events: "DescribeVpcs", output: "vpc-" },
  { service: "ec2", operation: "CreateSecurityGroup", call: sdk("EC2", "CreateSecurityGroup", { GroupName: "compat-{n}", Description: "compat" }), events: "CreateSecurityGroup", output: "sg-" },
  // SQS (awsJson 1.0 in current SDKs)
  { service: "sqs", operation: "ListQueues", call: sdk("SQS", "ListQueues"), events: "ListQueues", output: "compat-fx" },
  { service: "sqs", operation: "SendMessage", call: sdk("SQS", "SendMessage", { QueueUrl: "{queueUrl}", MessageBody: "hello {n}" }), events: "SendMessage", resources: [QUEUE_ARN] },
  { service: "sqs", operation: "CreateQueue", call: sdk("SQS", "CreateQueue", { QueueName: "compat-{n}" }), events: "CreateQueue", output: "compat-{n}" },
  // SNS (awsQuery)
  { service: "sns", operation: "ListTopics", call: sdk("SNS", "ListTopics"), events: "ListTopics", output: "{topicArn}" },
  { service: "sns", operation: "Publish", call: sdk("SNS", "Publish", { TopicArn: "{topicArn}", Message: "hello {n}" }), events: "Publish", resources: ["{topicArn}"] },
  // Secrets Manager (awsJson 1.1)
  { service: "secretsmanager", operation: "GetSecretValue", call: sdk("SecretsManager", "GetSecretValue", { SecretId: "{secret}" }), events: "GetSecretValue", output: "s3cr3t-value", resources: [SECRET_ARN] },
  { service: "secretsmanager", operation: "CreateSecret", call: sdk("SecretsManager", "CreateSecret", { Name: "compat-{n}", SecretString: "x" }), events: "CreateSecret" },
  // SSM (awsJson 1.1)
  { service: "ssm", operation: "GetParameter", call: sdk("SSM", "GetParameter", { Name: "{param}" }), events: "GetParameter", output: "param-value", resources: [PARAM_ARN] },
  { service: "ssm", operation: "PutParameter", call: sdk("SSM", "PutParameter", { Name: "/compat/{n}", Value: "v", Type: "String" }), events: "PutParameter" },
  // KMS (awsJson 1.1)
  { service: "kms", operation: "ListKeys", call: sdk("KMS", "ListKeys"), events: "ListKeys", output: "{keyId}" },
  { service: "kms", operation: "Encrypt", call: sdk("KMS", "Encrypt", { KeyId: "{keyId}", Plaintext: "plain" }), events: "Encrypt", resources: [KEY_ARN] },
  // Lambda (rest-json; moto's verifier false-alarms on Lambda paths)
  { service: "lambda", operation: "ListFunctions", call: sdk("Lambda", "ListFunctions"), events: "ListFunctions", output: "{function}", needs: MOTO_FALSE_ALARM },
  { service: "lambda", operation: "GetFunction", call: sdk("Lambda", "GetFunction", { FunctionName: "{function}" }), events: "GetFunction", resources: [FUNCTION_ARN], needs: MOTO_FALSE_ALARM },
  { service: "lambda", operation: "CreateFunction", call: sdk("Lambda", "CreateFunction", { FunctionName: "compat-{n}", Runtime: "python3.11", Role: "{roleArn}", Handler: "index.handler", Code: { ZipFile: { $file: "{zipFile}" } } }), events: "CreateFunction", resources: ["arn:aws:lambda:us-east-1:{account}:function:compat-{n}"], needs: MOTO_FALSE_ALARM },
  // CloudWatch (whatever protocol this SDK version speaks)
  { service: "monitoring", operation: "PutMetricData", call: sdk("CloudWatch", "PutMetricData", { Namespace: "Compat", MetricData: [{ MetricName: "m{n}", Value: 1 }] }), events: "PutMetricData" },
  { service: "monitoring", operation: "ListMetrics", call: sdk("CloudWatch", "ListMetrics"), events: "ListMetrics" },
];

// ───────────────────────────── aws CLI (the same rows for v1 and v2) ─────────────────────────────
// biome-ignore format: one row per line
const cliRows: Row[] = [
  { service: "s3", operation: "ListBuckets (s3 ls)", call: cli("s3", "ls"), events: "ListBuckets", output: "{bucket}" },
  { service: "s3", operation: "CreateBucket (s3 mb)", call: cli("s3", "mb", "s3://compat-{n}"), events: "CreateBucket", resources: ["arn:aws:s3:::compat-{n}"] },
  { service: "s3", operation: "PutObject (s3 cp upload)", call: cli("s3", "cp", "{smallFile}", "s3://{bucket}/cli/{n}.txt"), events: "PutObject", resources: ["arn:aws:s3:::{bucket}/cli/{n}.txt"] },
  { service: "s3", operation: "multipart (s3 cp 9 MiB)", call: cli("s3", "cp", "{bigFile}", "s3://{bucket}/cli/big-{n}.bin"), events: { CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1 } },
  { service: "s3", operation: "GetObject (s3 cp download)", call: cli("s3", "cp", "s3://{bucket}/fixture.txt", "{workDir}/dl-{n}.txt"), events: { HeadObject: 1, GetObject: 1 } },
  { service: "s3", operation: "GetObject (s3api get-object)", call: cli("s3api", "get-object", "--bucket", "{bucket}", "--key", "fixture.txt", "{workDir}/get-{n}.txt"), events: "GetObject", resources: [S3_OBJECT], output: "ContentLength" },
  { service: "s3", operation: "ListObjectsV2 (s3api)", call: cli("s3api", "list-objects-v2", "--bucket", "{bucket}"), events: "ListObjectsV2", output: "fixture.txt" },
  { service: "s3", operation: "ListObjectsV2 (s3 ls s3://bucket/)", call: cli("s3", "ls", "s3://{bucket}/"), events: "ListObjectsV2", output: "fixture.txt", needs: MOTO_FALSE_ALARM },
  { service: "s3", operation: "presigned GET (s3 presign: SigV2 by default, refused)", call: { kind: "cli", args: ["s3", "presign", "s3://{bucket}/fixture.txt"], presignFetch: { method: "GET" } }, events: "GetObject", ...SIGV2_REFUSED, only: "aws-cli-v1" },
  { service: "s3", operation: "presigned GET (s3 presign: SigV4 by default)", call: { kind: "cli", args: ["s3", "presign", "s3://{bucket}/fixture.txt"], presignFetch: { method: "GET" } }, events: "GetObject", output: "fixture-content", needs: MOTO_FALSE_ALARM, only: "aws-cli-v2" },
  { service: "s3", operation: "presigned GET (s3 presign, signature_version=s3v4)", call: { kind: "cli", args: ["s3", "presign", "s3://{bucket}/fixture.txt"], presignFetch: { method: "GET" }, s3SigV4Config: true }, events: "GetObject", output: "fixture-content", needs: MOTO_FALSE_ALARM },
  { service: "dynamodb", operation: "ListTables", call: cli("dynamodb", "list-tables"), events: "ListTables", output: "{table}" },
  { service: "dynamodb", operation: "PutItem", call: cli("dynamodb", "put-item", "--table-name", "{table}", "--item", '{"pk":{"S":"cli-{n}"}}'), events: "PutItem", resources: [TABLE_ARN] },
  { service: "dynamodb", operation: "GetItem", call: cli("dynamodb", "get-item", "--table-name", "{table}", "--key", '{"pk":{"S":"k1"}}'), events: "GetItem", resources: [TABLE_ARN], output: "fixture" },
  { service: "sts", operation: "GetCallerIdentity", call: cli("sts", "get-caller-identity"), events: "GetCallerIdentity", output: "{account}" },
  { service: "iam", operation: "ListUsers (--region eu-west-1)", call: cli("iam", "list-users", "--region", "eu-west-1"), events: "ListUsers", output: "tollgate-demo" },
  { service: "ec2", operation: "DescribeInstances", call: cli("ec2", "describe-instances"), events: "DescribeInstances" },
  { service: "ec2", operation: "DescribeSecurityGroups", call: cli("ec2", "describe-security-groups"), events: "DescribeSecurityGroups", output: "sg-" },
  { service: "sqs", operation: "ListQueues", call: cli("sqs", "list-queues"), events: "ListQueues", output: "compat-fx" },
  { service: "sqs", operation: "SendMessage", call: cli("sqs", "send-message", "--queue-url", "{queueUrl}", "--message-body", "hi {n}"), events: "SendMessage", resources: [QUEUE_ARN] },
  { service: "sns", operation: "ListTopics", call: cli("sns", "list-topics"), events: "ListTopics", output: "{topicArn}" },
  { service: "sns", operation: "Publish", call: cli("sns", "publish", "--topic-arn", "{topicArn}", "--message", "hi {n}"), events: "Publish", resources: ["{topicArn}"] },
  { service: "secretsmanager", operation: "GetSecretValue", call: cli("secretsmanager", "get-secret-value", "--secret-id", "{secret}"), events: "GetSecretValue", output: "s3cr3t-value", resources: [SECRET_ARN] },
  { service: "ssm", operation: "GetParameter", call: cli("ssm", "get-parameter", "--name", "{param}"), events: "GetParameter", output: "param-value", resources: [PARAM_ARN] },
  { service: "kms", operation: "ListKeys", call: cli("kms", "list-keys"), events: "ListKeys", output: "{keyId}" },
  { service: "kms", operation: "Encrypt", call: cli("kms", "encrypt", "--key-id", "{keyId}", "--plaintext", "cGxhaW4="), events: "Encrypt", resources: [KEY_ARN] },
  { service: "lambda", operation: "ListFunctions", call: cli("lambda", "list-functions"), events: "ListFunctions", output: "{function}", needs: MOTO_FALSE_ALARM },
  { service: "lambda", operation: "GetFunction", call: cli("lambda", "get-function", "--function-name", "{function}"), events: "GetFunction", resources: [FUNCTION_ARN], needs: MOTO_FALSE_ALARM },
  { service: "monitoring", operation: "ListMetrics", call: cli("cloudwatch", "list-metrics"), events: "ListMetrics" },
  { service: "monitoring", operation: "PutMetricData", call: cli("cloudwatch", "put-metric-data", "--namespace", "Compat", "--metric-name", "m{n}", "--value", "1"), events: "PutMetricData" },
];

// ───────────────────────────── boto3 ─────────────────────────────
// biome-ignore format: one row per line
const boto3Rows: Row[] = [
  { service: "s3", operation: "ListBuckets", call: boto3("s3", "list_buckets"), events: "ListBuckets", output: "{bucket}" },
  { service: "s3", operation: "PutObject", call: boto3("s3", "put_object", { Bucket: "{bucket}", Key: "boto3/{n}.txt", Body: "hello {n}" }), events: "PutObject", resources: ["arn:aws:s3:::{bucket}/boto3/{n}.txt"] },
  { service: "s3", operation: "GetObject", call: boto3("s3", "get_object", { Bucket: "{bucket}", Key: "fixture.txt" }), events: "GetObject", resources: [S3_OBJECT], output: "fixture-content" },
  { service: "s3", operation: "multipart (upload_file 9 MiB)", call: boto3("s3", "upload_file", { Filename: "{bigFile}", Bucket: "{bucket}", Key: "boto3/big-{n}.bin" }), events: { CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1 } },
  { service: "s3", operation: "ListObjectsV2", call: boto3("s3", "list_objects_v2", { Bucket: "{bucket}" }), events: "ListObjectsV2", output: "fixture.txt" },
  { service: "s3", operation: "presigned GET (SigV2 by default, refused)", call: boto3("s3", "generate_presigned_url", { ClientMethod: "get_object", Params: { Bucket: "{bucket}", Key: "fixture.txt" } }, { fetch: { method: "GET" } }), events: "GetObject", ...SIGV2_REFUSED },
  { service: "s3", operation: "presigned GET (s3v4)", call: boto3("s3", "generate_presigned_url", { ClientMethod: "get_object", Params: { Bucket: "{bucket}", Key: "fixture.txt" } }, { fetch: { method: "GET" }, signature_version: "s3v4" }), events: "GetObject", output: "fixture-content", needs: MOTO_FALSE_ALARM },
  { service: "s3", operation: "presigned PUT (s3v4)", call: boto3("s3", "generate_presigned_url", { ClientMethod: "put_object", Params: { Bucket: "{bucket}", Key: "boto3/presigned-{n}.txt" } }, { fetch: { method: "PUT", body: "via boto3 presigned put" }, signature_version: "s3v4" }), events: "PutObject", needs: MOTO_FALSE_ALARM },
  { service: "dynamodb", operation: "PutItem", call: boto3("dynamodb", "put_item", { TableName: "{table}", Item: { pk: { S: "boto3-{n}" } } }), events: "PutItem", resources: [TABLE_ARN] },
  { service: "dynamodb", operation: "GetItem", call: boto3("dynamodb", "get_item", { TableName: "{table}", Key: { pk: { S: "k1" } } }), events: "GetItem", resources: [TABLE_ARN], output: "fixture" },
  { service: "sts", operation: "GetCallerIdentity", call: boto3("sts", "get_caller_identity"), events: "GetCallerIdentity", output: "{account}" },
  { service: "iam", operation: "ListRoles (region eu-west-1)", call: boto3("iam", "list_roles", {}, { region: "eu-west-1" }), events: "ListRoles", output: "compat-lambda-role" },
  { service: "ec2", operation: "DescribeVolumes", call: boto3("ec2", "describe_volumes"), events: "DescribeVolumes" },
  { service: "sqs", operation: "SendMessage", call: boto3("sqs", "send_message", { QueueUrl: "{queueUrl}", MessageBody: "hi {n}" }), events: "SendMessage", resources: [QUEUE_ARN] },
  { service: "sqs", operation: "ReceiveMessage", call: boto3("sqs", "receive_message", { QueueUrl: "{queueUrl}", WaitTimeSeconds: 0 }), events: "ReceiveMessage", resources: [QUEUE_ARN] },
  { service: "sns", operation: "Publish", call: boto3("sns", "publish", { TopicArn: "{topicArn}", Message: "hi {n}" }), events: "Publish", resources: ["{topicArn}"] },
  { service: "secretsmanager", operation: "GetSecretValue", call: boto3("secretsmanager", "get_secret_value", { SecretId: "{secret}" }), events: "GetSecretValue", output: "s3cr3t-value", resources: [SECRET_ARN] },
  { service: "ssm", operation: "GetParameter", call: boto3("ssm", "get_parameter", { Name: "{param}" }), events: "GetParameter", output: "param-value", resources: [PARAM_ARN] },
  { service: "kms", operation: "Encrypt", call: boto3("kms", "encrypt", { KeyId: "{keyId}", Plaintext: "plain" }), events: "Encrypt", resources: [KEY_ARN] },
  { service: "lambda", operation: "GetFunction", call: boto3("lambda", "get_function", { FunctionName: "{function}" }), events: "GetFunction", resources: [FUNCTION_ARN], needs: MOTO_FALSE_ALARM },
  { service: "monitoring", operation: "ListMetrics", call: boto3("cloudwatch", "list_metrics"), events: "ListMetrics" },
];

/** A table's rows for one client, each in every mode (endpoint first), with the pending reason that applies. */
function rows(client: CompatClient, list: Row[]): CompatCase[] {
  return list.flatMap(({ pendingFor, only, ...r }) =>
    only !== undefined && only !== client
      ? []
      : COMPAT_MODES.map((mode) => {
          const pending = pendingFor?.[`${client}/${mode}`] ?? pendingFor?.[client] ?? pendingFor?.[mode] ?? r.pending;
          return {
            ...r,
            client,
            mode,
            needs: r.needs ?? "verifying-moto",
            ...(pending === undefined ? {} : { pending }),
          };
        }),
  );
}

/** The whole matrix, grouped by client, each row in both modes. */
export const COMPAT_CASES: readonly CompatCase[] = [
  ...rows("sdk-js-v3", sdkRows),
  ...rows("aws-cli-v1", cliRows),
  ...rows("aws-cli-v2", cliRows),
  ...rows("boto3", boto3Rows),
];
