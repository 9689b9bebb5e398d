/**
 * Real wire requests: the AWS SDK v3 clients serialise and sign each call, a `requestHandler`
 * captures the HttpRequest instead of sending it, and the classifier must recover the operation.
 */
import { CloudWatchClient, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient, PutItemCommand, TransactWriteItemsCommand } from "@aws-sdk/client-dynamodb";
import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { GetFunctionCommand, InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { type ClassifyInput, classifyRequest } from "./aws-classifier.js";
import { REDACTED } from "./sensitive-redaction.js";

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";

interface WireRequest {
  method: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

class Captured extends Error {
  constructor(readonly request: WireRequest) {
    super("captured");
  }
}

/** A request handler that records the signed request instead of sending it. */
const capture = {
  handle: (request: WireRequest): Promise<never> => Promise.reject(new Captured(request)),
};

function clientConfig(extra: Record<string, unknown> = {}) {
  return {
    region: REGION,
    endpoint: "http://127.0.0.1:8787",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    requestHandler: capture,
    maxAttempts: 1,
    ...extra,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: any client and command of the SDK
async function wire(client: { send(command: any): Promise<unknown> }, command: unknown): Promise<ClassifyInput> {
  let request: WireRequest | undefined;
  try {
    await client.send(command);
  } catch (err) {
    if (!(err instanceof Captured)) throw err;
    request = err.request;
  }
  if (request === undefined) throw new Error("no request captured");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers.host ??= request.port !== undefined ? `${request.hostname}:${request.port}` : request.hostname;
  const scope = /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\//.exec(headers.authorization ?? "");
  const query: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(request.query ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) query.push([key, item ?? ""]);
  }
  const body = request.body;
  return {
    method: request.method,
    rawPath: request.path,
    query,
    headers,
    signingName: scope?.[2] ?? "",
    region: scope?.[1] ?? "",
    accountId: ACCOUNT,
    ...(typeof body === "string" || body instanceof Uint8Array ? { body: Buffer.from(body) } : {}),
  };
}

describe("classification of real SDK v3 wire requests", () => {
  const s3 = new S3Client(clientConfig({ forcePathStyle: true }));
  const bucketArn = "arn:aws:s3:::bkt";
  const objectArn = "arn:aws:s3:::bkt/dir/a b.txt";

  it.each([
    ["ListObjectsV2", new ListObjectsV2Command({ Bucket: "bkt", Prefix: "dir/" }), true, [bucketArn]],
    [
      "PutObject",
      new PutObjectCommand({ Bucket: "bkt", Key: "dir/a b.txt", Body: "x" }),
      false,
      [objectArn, bucketArn],
    ],
    [
      "CreateMultipartUpload",
      new CreateMultipartUploadCommand({ Bucket: "bkt", Key: "dir/a b.txt" }),
      false,
      [objectArn, bucketArn],
    ],
    [
      "UploadPart",
      new UploadPartCommand({ Bucket: "bkt", Key: "dir/a b.txt", UploadId: "u1", PartNumber: 2, Body: "x" }),
      false,
      [objectArn, bucketArn],
    ],
    [
      "PutObjectTagging",
      new PutObjectTaggingCommand({
        Bucket: "bkt",
        Key: "dir/a b.txt",
        Tagging: { TagSet: [{ Key: "k", Value: "v" }] },
      }),
      false,
      [objectArn, bucketArn],
    ],
  ] as const)("S3 %s (path style)", async (eventName, command, readOnly, arns) => {
    const c = classifyRequest(await wire(s3, command));
    expect(c).toMatchObject({ eventSource: "s3.amazonaws.com", eventName, readOnly, protocol: "restXml" });
    expect(c.resources.map((r) => r.arn)).toEqual(arns);
    expect(c.s3Addressing).toBe("path");
    expect(c.s3Bucket).toBe("bkt");
  });

  it("S3 GetObject virtual-hosted on a localhost endpoint and on AWS", async () => {
    const local = new S3Client(clientConfig({ endpoint: "http://localhost:8787" }));
    const input = await wire(local, new GetObjectCommand({ Bucket: "bkt", Key: "dir/a b.txt" }));
    expect(input.headers.host).toBe("bkt.localhost:8787");
    const c = classifyRequest(input);
    expect(c).toMatchObject({ eventName: "GetObject", readOnly: true, s3Bucket: "bkt", s3Addressing: "virtual" });
    expect(c.resources.map((r) => r.arn)).toEqual([objectArn, bucketArn]);
    const aws = new S3Client(clientConfig({ endpoint: undefined }));
    const awsInput = await wire(aws, new GetObjectCommand({ Bucket: "bkt", Key: "k" }));
    expect(awsInput.headers.host).toBe("bkt.s3.eu-west-1.amazonaws.com");
    expect(classifyRequest(awsInput)).toMatchObject({
      eventName: "GetObject",
      s3Bucket: "bkt",
      s3Addressing: "virtual",
    });
  });

  it("DynamoDB PutItem and TransactWriteItems", async () => {
    const ddb = new DynamoDBClient(clientConfig());
    const put = classifyRequest(await wire(ddb, new PutItemCommand({ TableName: "t", Item: { id: { S: "1" } } })));
    expect(put).toMatchObject({
      eventSource: "dynamodb.amazonaws.com",
      eventName: "PutItem",
      readOnly: false,
      protocol: "awsJson1_0",
    });
    expect(put.resources).toEqual([
      { arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/t`, type: "AWS::DynamoDB::Table" },
    ]);
    const tx = classifyRequest(
      await wire(
        ddb,
        new TransactWriteItemsCommand({
          TransactItems: [{ Put: { TableName: "a", Item: {} } }, { Delete: { TableName: "b", Key: {} } }],
        }),
      ),
    );
    expect(tx.resources.map((r) => r.arn)).toEqual([
      `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/a`,
      `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/b`,
    ]);
  });

  it("STS GetCallerIdentity and IAM CreateRole (global, recorded in us-east-1)", async () => {
    const sts = classifyRequest(await wire(new STSClient(clientConfig()), new GetCallerIdentityCommand({})));
    expect(sts).toMatchObject({
      eventSource: "sts.amazonaws.com",
      eventName: "GetCallerIdentity",
      readOnly: true,
      protocol: "awsQuery",
    });
    const iam = classifyRequest(
      await wire(
        new IAMClient(clientConfig()),
        new CreateRoleCommand({ RoleName: "r", AssumeRolePolicyDocument: "{}" }),
      ),
    );
    expect(iam).toMatchObject({
      eventSource: "iam.amazonaws.com",
      eventName: "CreateRole",
      awsRegion: "us-east-1",
      readOnly: false,
    });
    expect(iam.resources).toEqual([{ arn: `arn:aws:iam::${ACCOUNT}:role/r`, type: "AWS::IAM::Role" }]);
  });

  it("EC2 DescribeInstances with InstanceIds", async () => {
    const c = classifyRequest(
      await wire(new EC2Client(clientConfig()), new DescribeInstancesCommand({ InstanceIds: ["i-1", "i-2"] })),
    );
    expect(c).toMatchObject({
      eventSource: "ec2.amazonaws.com",
      eventName: "DescribeInstances",
      readOnly: true,
      protocol: "ec2Query",
    });
    expect(c.resources.map((r) => r.arn)).toEqual([
      `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-1`,
      `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-2`,
    ]);
  });

  it("SQS SendMessage (awsJson 1.0 from current clients)", async () => {
    const queueUrl = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/jobs`;
    const c = classifyRequest(
      await wire(new SQSClient(clientConfig()), new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "hi" })),
    );
    expect(c).toMatchObject({
      eventSource: "sqs.amazonaws.com",
      eventName: "SendMessage",
      readOnly: false,
      protocol: "awsJson1_0",
    });
    expect(c.resources).toEqual([{ arn: `arn:aws:sqs:${REGION}:${ACCOUNT}:jobs`, type: "AWS::SQS::Queue" }]);
  });

  it("SNS Publish", async () => {
    const topic = `arn:aws:sns:${REGION}:${ACCOUNT}:alerts`;
    const c = classifyRequest(
      await wire(new SNSClient(clientConfig()), new PublishCommand({ TopicArn: topic, Message: "m" })),
    );
    expect(c).toMatchObject({
      eventSource: "sns.amazonaws.com",
      eventName: "Publish",
      readOnly: false,
      protocol: "awsQuery",
    });
    expect(c.resources).toEqual([{ arn: topic, type: "AWS::SNS::Topic" }]);
  });

  it("Secrets Manager GetSecretValue", async () => {
    const c = classifyRequest(
      await wire(new SecretsManagerClient(clientConfig()), new GetSecretValueCommand({ SecretId: "prod/db" })),
    );
    expect(c).toMatchObject({ eventName: "GetSecretValue", readOnly: true, protocol: "awsJson1_1" });
    expect(c.resources[0]?.arn).toBe(`arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db`);
  });

  it("SSM GetParameter and PutParameter (Value redacted)", async () => {
    const ssm = new SSMClient(clientConfig());
    const get = classifyRequest(await wire(ssm, new GetParameterCommand({ Name: "/db/host" })));
    expect(get).toMatchObject({ eventName: "GetParameter", readOnly: true });
    expect(get.resources).toEqual([
      { arn: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/db/host`, type: "AWS::SSM::Parameter" },
    ]);
    const put = classifyRequest(
      await wire(ssm, new PutParameterCommand({ Name: "/db/pw", Value: "hunter2", Type: "SecureString" })),
    );
    expect(put).toMatchObject({ eventName: "PutParameter", readOnly: false });
    expect(put.requestParameters).toMatchObject({ Name: "/db/pw", Value: REDACTED });
    expect(JSON.stringify(put)).not.toContain("hunter2");
  });

  it("KMS Encrypt (Plaintext redacted)", async () => {
    const c = classifyRequest(
      await wire(
        new KMSClient(clientConfig()),
        new EncryptCommand({ KeyId: "alias/app", Plaintext: Buffer.from("s3cr3t") }),
      ),
    );
    expect(c).toMatchObject({ eventSource: "kms.amazonaws.com", eventName: "Encrypt", protocol: "awsJson1_1" });
    expect(c.requestParameters).toMatchObject({ KeyId: "alias/app", Plaintext: REDACTED });
    expect(c.resources).toEqual([{ arn: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/app`, type: "AWS::KMS::Alias" }]);
  });

  it("Lambda Invoke by ARN and GetFunction", async () => {
    const lambda = new LambdaClient(clientConfig());
    const arn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:f`;
    const invoke = classifyRequest(
      await wire(lambda, new InvokeCommand({ FunctionName: arn, Payload: Buffer.from("{}") })),
    );
    expect(invoke).toMatchObject({
      eventSource: "lambda.amazonaws.com",
      eventName: "Invoke",
      readOnly: false,
      protocol: "restJson",
    });
    expect(invoke.requestParameters).toEqual({ FunctionName: arn });
    expect(invoke.resources).toEqual([{ arn, type: "AWS::Lambda::Function" }]);
    const get = classifyRequest(await wire(lambda, new GetFunctionCommand({ FunctionName: "f", Qualifier: "prod" })));
    expect(get).toMatchObject({
      eventName: "GetFunction",
      readOnly: true,
      requestParameters: { FunctionName: "f", Qualifier: "prod" },
    });
    expect(get.resources[0]?.arn).toBe(arn);
  });

  it("CloudWatch PutMetricData (awsJson 1.0 from @aws-sdk/client-cloudwatch)", async () => {
    const input = await wire(
      new CloudWatchClient(clientConfig()),
      new PutMetricDataCommand({ Namespace: "app", MetricData: [{ MetricName: "m", Value: 1 }] }),
    );
    const c = classifyRequest(input);
    expect(c).toMatchObject({
      service: "monitoring",
      eventSource: "monitoring.amazonaws.com",
      eventName: "PutMetricData",
      readOnly: false,
      apiService: "cloudwatch",
    });
    expect(c.requestParameters).toMatchObject({ Namespace: "app" });
  });
});
