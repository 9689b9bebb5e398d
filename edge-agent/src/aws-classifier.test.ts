import { describe, expect, it } from "vitest";
import { type ClassifyInput, classifyRequest } from "./aws-classifier.js";
import { REDACTED } from "./sensitive-redaction.js";

const ACCOUNT = "123456789012";

function s3(
  method: string,
  rawPath: string,
  query: Array<[string, string]> = [],
  headers: ClassifyInput["headers"] = {},
) {
  return classifyRequest({
    method,
    rawPath,
    query,
    headers: { host: "127.0.0.1:8787", ...headers },
    signingName: "s3",
    region: "eu-west-1",
    accountId: ACCOUNT,
  });
}

function json(
  signingName: string,
  target: string | undefined,
  body: unknown,
  extraHeaders: Record<string, string> = {},
) {
  const headers: Record<string, string> = { "content-type": "application/x-amz-json-1.0", ...extraHeaders };
  if (target !== undefined) headers["x-amz-target"] = target;
  return classifyRequest({
    method: "POST",
    rawPath: "/",
    query: [],
    headers,
    signingName,
    region: "eu-west-1",
    accountId: ACCOUNT,
    body: Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
  });
}

function query(signingName: string, form: string, region = "eu-west-1", accountId = ACCOUNT) {
  return classifyRequest({
    method: "POST",
    rawPath: "/",
    query: [],
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    signingName,
    region,
    accountId,
    body: Buffer.from(form),
  });
}

describe("classifyRequest: S3 path-style", () => {
  const bucketOps: Array<[string, string, Array<[string, string]>, string]> = [
    ["GET", "/b", [], "ListObjects"],
    ["GET", "/b/", [["prefix", "a"]], "ListObjects"],
    ["GET", "/b", [["list-type", "2"]], "ListObjectsV2"],
    ["PUT", "/b", [], "CreateBucket"],
    ["DELETE", "/b", [], "DeleteBucket"],
    ["HEAD", "/b", [], "HeadBucket"],
    ["GET", "/b", [["location", ""]], "GetBucketLocation"],
    ["GET", "/b", [["tagging", ""]], "GetBucketTagging"],
    ["PUT", "/b", [["tagging", ""]], "PutBucketTagging"],
    ["DELETE", "/b", [["tagging", ""]], "DeleteBucketTagging"],
    ["GET", "/b", [["policy", ""]], "GetBucketPolicy"],
    ["PUT", "/b", [["policy", ""]], "PutBucketPolicy"],
    ["DELETE", "/b", [["policy", ""]], "DeleteBucketPolicy"],
    ["GET", "/b", [["policyStatus", ""]], "GetBucketPolicyStatus"],
    ["GET", "/b", [["acl", ""]], "GetBucketAcl"],
    ["PUT", "/b", [["acl", ""]], "PutBucketAcl"],
    ["GET", "/b", [["versioning", ""]], "GetBucketVersioning"],
    ["PUT", "/b", [["versioning", ""]], "PutBucketVersioning"],
    ["GET", "/b", [["cors", ""]], "GetBucketCors"],
    ["PUT", "/b", [["cors", ""]], "PutBucketCors"],
    ["DELETE", "/b", [["cors", ""]], "DeleteBucketCors"],
    ["GET", "/b", [["lifecycle", ""]], "GetBucketLifecycleConfiguration"],
    ["PUT", "/b", [["lifecycle", ""]], "PutBucketLifecycleConfiguration"],
    ["DELETE", "/b", [["lifecycle", ""]], "DeleteBucketLifecycle"],
    ["GET", "/b", [["encryption", ""]], "GetBucketEncryption"],
    ["PUT", "/b", [["encryption", ""]], "PutBucketEncryption"],
    ["DELETE", "/b", [["encryption", ""]], "DeleteBucketEncryption"],
    ["GET", "/b", [["website", ""]], "GetBucketWebsite"],
    ["PUT", "/b", [["website", ""]], "PutBucketWebsite"],
    ["DELETE", "/b", [["website", ""]], "DeleteBucketWebsite"],
    ["GET", "/b", [["notification", ""]], "GetBucketNotificationConfiguration"],
    ["PUT", "/b", [["notification", ""]], "PutBucketNotificationConfiguration"],
    ["GET", "/b", [["logging", ""]], "GetBucketLogging"],
    ["PUT", "/b", [["logging", ""]], "PutBucketLogging"],
    ["GET", "/b", [["ownershipControls", ""]], "GetBucketOwnershipControls"],
    ["PUT", "/b", [["ownershipControls", ""]], "PutBucketOwnershipControls"],
    ["DELETE", "/b", [["ownershipControls", ""]], "DeleteBucketOwnershipControls"],
    ["GET", "/b", [["publicAccessBlock", ""]], "GetPublicAccessBlock"],
    ["PUT", "/b", [["publicAccessBlock", ""]], "PutPublicAccessBlock"],
    ["DELETE", "/b", [["publicAccessBlock", ""]], "DeletePublicAccessBlock"],
    ["GET", "/b", [["replication", ""]], "GetBucketReplication"],
    ["GET", "/b", [["requestPayment", ""]], "GetBucketRequestPayment"],
    ["PUT", "/b", [["accelerate", ""]], "PutBucketAccelerateConfiguration"],
    ["GET", "/b", [["object-lock", ""]], "GetObjectLockConfiguration"],
    ["GET", "/b", [["analytics", ""]], "ListBucketAnalyticsConfigurations"],
    [
      "PUT",
      "/b",
      [
        ["analytics", ""],
        ["id", "x"],
      ],
      "PutBucketAnalyticsConfiguration",
    ],
    [
      "DELETE",
      "/b",
      [
        ["intelligent-tiering", ""],
        ["id", "x"],
      ],
      "DeleteBucketIntelligentTieringConfiguration",
    ],
    ["GET", "/b", [["uploads", ""]], "ListMultipartUploads"],
    ["POST", "/b", [["delete", ""]], "DeleteObjects"],
    ["GET", "/b", [["versions", ""]], "ListObjectVersions"],
    ["POST", "/b", [], "Unknown"],
    ["DELETE", "/b", [["acl", ""]], "Unknown"],
  ];
  it.each(bucketOps)("%s %s %j → %s", (method, path, q, expected) => {
    const result = s3(method, path, q);
    expect(result.eventName).toBe(expected);
    expect(result.resources).toEqual([{ arn: "arn:aws:s3:::b", type: "AWS::S3::Bucket" }]);
    expect(result.readOnly).toBe(method === "GET" || method === "HEAD");
  });

  const copy = { "x-amz-copy-source": "/src-bucket/src%20dir/k.txt?versionId=v1" };
  const objectOps: Array<[string, Array<[string, string]>, Record<string, string>, string]> = [
    ["GET", [], {}, "GetObject"],
    ["GET", [["versionId", "v"]], {}, "GetObject"],
    ["HEAD", [], {}, "HeadObject"],
    ["PUT", [], {}, "PutObject"],
    ["PUT", [], copy, "CopyObject"],
    ["DELETE", [], {}, "DeleteObject"],
    ["POST", [["uploads", ""]], {}, "CreateMultipartUpload"],
    [
      "PUT",
      [
        ["partNumber", "1"],
        ["uploadId", "u"],
      ],
      {},
      "UploadPart",
    ],
    [
      "PUT",
      [
        ["partNumber", "2"],
        ["uploadId", "u"],
      ],
      copy,
      "UploadPartCopy",
    ],
    ["POST", [["uploadId", "u"]], {}, "CompleteMultipartUpload"],
    ["DELETE", [["uploadId", "u"]], {}, "AbortMultipartUpload"],
    ["GET", [["uploadId", "u"]], {}, "ListParts"],
    ["GET", [["tagging", ""]], {}, "GetObjectTagging"],
    ["PUT", [["tagging", ""]], {}, "PutObjectTagging"],
    ["DELETE", [["tagging", ""]], {}, "DeleteObjectTagging"],
    ["GET", [["acl", ""]], {}, "GetObjectAcl"],
    ["PUT", [["acl", ""]], {}, "PutObjectAcl"],
    ["GET", [["attributes", ""]], {}, "GetObjectAttributes"],
    ["POST", [["restore", ""]], {}, "RestoreObject"],
    [
      "POST",
      [
        ["select", ""],
        ["select-type", "2"],
      ],
      {},
      "SelectObjectContent",
    ],
    ["GET", [["retention", ""]], {}, "GetObjectRetention"],
    ["PUT", [["legal-hold", ""]], {}, "PutObjectLegalHold"],
    ["POST", [], {}, "Unknown"],
  ];
  it.each(objectOps)("%s object %j → %s", (method, q, headers, expected) => {
    const result = s3(method, "/b/dir/k", q, headers);
    expect(result.eventName).toBe(expected);
    expect(result.resources.slice(0, 2)).toEqual([
      { arn: "arn:aws:s3:::b/dir/k", type: "AWS::S3::Object" },
      { arn: "arn:aws:s3:::b", type: "AWS::S3::Bucket" },
    ]);
    // SelectObjectContent (POST) only reads, as CloudTrail records it; the old table said write.
    expect(result.readOnly).toBe(method === "GET" || method === "HEAD" || expected === "SelectObjectContent");
  });

  it("ListBuckets on / with the Host as the only parameter", () => {
    const result = s3("GET", "/");
    expect(result).toEqual({
      service: "s3",
      eventSource: "s3.amazonaws.com",
      eventName: "ListBuckets",
      awsRegion: "eu-west-1",
      readOnly: true,
      protocol: "restXml",
      resources: [],
      requestParameters: { Host: "127.0.0.1:8787" },
      apiService: "s3",
      endpointPrefix: "s3",
    });
  });

  it("decodes keys from the raw path and records CloudTrail-style parameters", () => {
    const result = s3("PUT", "/my-bucket/dir/a%20b%2Bc+d%2Fe.txt", [["x-id", "PutObject"]]);
    expect(result.eventName).toBe("PutObject");
    expect(result.requestParameters).toEqual({
      bucketName: "my-bucket",
      Host: "127.0.0.1:8787",
      key: "dir/a b+c+d/e.txt",
      "x-id": "PutObject",
    });
    expect(result.resources[0]?.arn).toBe("arn:aws:s3:::my-bucket/dir/a b+c+d/e.txt");
  });

  it("includes query parameters (ListObjectsV2)", () => {
    const result = s3("GET", "/b", [
      ["list-type", "2"],
      ["prefix", "a/"],
      ["max-keys", "10"],
    ]);
    expect(result.requestParameters).toEqual({
      bucketName: "b",
      Host: "127.0.0.1:8787",
      "list-type": "2",
      prefix: "a/",
      "max-keys": "10",
    });
  });

  it("keeps uploadId and partNumber and records the copy source and its resources", () => {
    const result = s3(
      "PUT",
      "/b/k",
      [
        ["partNumber", "3"],
        ["uploadId", "U1"],
      ],
      { "x-amz-copy-source": "src-bucket/src%20dir/k.txt" },
    );
    expect(result.eventName).toBe("UploadPartCopy");
    expect(result.requestParameters).toMatchObject({ partNumber: "3", uploadId: "U1", key: "k" });
    expect(result.requestParameters?.["x-amz-copy-source"]).toBe("src-bucket/src%20dir/k.txt");
    expect(result.resources).toEqual([
      { arn: "arn:aws:s3:::b/k", type: "AWS::S3::Object" },
      { arn: "arn:aws:s3:::b", type: "AWS::S3::Bucket" },
      { arn: "arn:aws:s3:::src-bucket/src dir/k.txt", type: "AWS::S3::Object" },
      { arn: "arn:aws:s3:::src-bucket", type: "AWS::S3::Bucket" },
    ]);
  });

  it("does not trust the SDK's x-id hint over the method", () => {
    const result = s3("PUT", "/b/k", [["x-id", "GetObject"]]);
    expect(result.eventName).toBe("PutObject");
    expect(result.readOnly).toBe(false);
  });

  it("redacts presigned-URL secrets in query parameters", () => {
    const result = s3("GET", "/b/k", [
      ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
      ["X-Amz-Security-Token", "token"],
      ["X-Amz-Signature", "abc"],
    ]);
    expect(result.requestParameters).toMatchObject({
      "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
      "X-Amz-Security-Token": REDACTED,
      "X-Amz-Signature": REDACTED,
    });
  });

  it("keeps repeated query parameters as arrays and tolerates bad percent-encoding", () => {
    const result = s3("GET", "/b/%E0%A4%A", [
      ["a", "1"],
      ["a", "2"],
    ]);
    expect(result.eventName).toBe("GetObject");
    expect(result.requestParameters).toMatchObject({ key: "%E0%A4%A", a: ["1", "2"] });
  });

  it("uses the partition of the region in ARNs", () => {
    const result = classifyRequest({
      method: "GET",
      rawPath: "/b",
      query: [],
      headers: {},
      signingName: "s3",
      region: "cn-north-1",
      accountId: "",
    });
    expect(result.resources).toEqual([{ arn: "arn:aws-cn:s3:::b", type: "AWS::S3::Bucket" }]);
    expect(result.requestParameters).toEqual({ bucketName: "b" });
  });
});

describe("classifyRequest: DynamoDB", () => {
  it("PutItem: operation from x-amz-target, table resource, item values kept", () => {
    const body = { TableName: "orders", Item: { id: { S: "1" }, note: { S: "hello" } } };
    const result = json("dynamodb", "DynamoDB_20120810.PutItem", body);
    expect(result).toEqual({
      service: "dynamodb",
      eventSource: "dynamodb.amazonaws.com",
      eventName: "PutItem",
      awsRegion: "eu-west-1",
      readOnly: false,
      protocol: "awsJson1_0",
      resources: [{ arn: `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/orders`, type: "AWS::DynamoDB::Table" }],
      requestParameters: body,
      apiService: "dynamodb",
      endpointPrefix: "dynamodb",
    });
  });

  it.each([
    ["GetItem", true],
    ["Query", true],
    ["Scan", true],
    ["BatchGetItem", true],
    ["TransactGetItems", true],
    ["DescribeTable", true],
    ["ListTables", true],
    ["UpdateItem", false],
    ["BatchWriteItem", false],
    ["TransactWriteItems", false],
    ["ExecuteStatement", false],
  ])("%s readOnly=%s", (operation, readOnly) => {
    expect(json("dynamodb", `DynamoDB_20120810.${operation}`, { TableName: "t" }).readOnly).toBe(readOnly);
  });

  it("collects tables of batch and transaction calls, without duplicates", () => {
    const batch = json("dynamodb", "DynamoDB_20120810.BatchWriteItem", {
      RequestItems: { a: [], b: [] },
    });
    expect(batch.resources.map((r) => r.arn)).toEqual([
      `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/a`,
      `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/b`,
    ]);
    const transact = json("dynamodb", "DynamoDB_20120810.TransactWriteItems", {
      TransactItems: [
        { Put: { TableName: "a", Item: {} } },
        { Update: { TableName: "b", Key: {} } },
        { ConditionCheck: { TableName: "a", Key: {} } },
        { Delete: { TableName: "arn:aws:dynamodb:us-east-1:999:table/c", Key: {} } },
      ],
    });
    expect(transact.resources.map((r) => r.arn)).toEqual([
      `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/a`,
      `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/b`,
      "arn:aws:dynamodb:us-east-1:999:table/c",
    ]);
    const get = json("dynamodb", "DynamoDB_20120810.TransactGetItems", {
      TransactItems: [{ Get: { TableName: "x", Key: {} } }],
    });
    expect(get.resources.map((r) => r.arn)).toEqual([`arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/x`]);
  });

  it("never throws on malformed bodies", () => {
    for (const body of ["{not json", Buffer.from([0xff, 0x00, 0x9c]), "[1,2]", "null", "", "1".repeat(10)]) {
      const result = json("dynamodb", "DynamoDB_20120810.GetItem", body);
      expect(result.eventName).toBe("GetItem");
      expect(result.requestParameters).toBeNull();
      expect(result.resources).toEqual([]);
    }
    expect(json("dynamodb", undefined, "{}").eventName).toBe("Unknown");
    expect(json("dynamodb", "DynamoDB_20120810.Bad Name", "{}").eventName).toBe("Unknown");
  });

  it("survives deeply nested JSON", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const body = `{"TableName":"t","Item":${deep}}`;
    const result = json("dynamodb", "DynamoDB_20120810.PutItem", body);
    expect(result.eventName).toBe("PutItem");
    expect(result.requestParameters?.TableName).toBe("t");
  });
});

describe("classifyRequest: Secrets Manager", () => {
  it("GetSecretValue by name", () => {
    const result = json("secretsmanager", "secretsmanager.GetSecretValue", { SecretId: "prod/db" });
    expect(result).toMatchObject({
      service: "secretsmanager",
      eventSource: "secretsmanager.amazonaws.com",
      eventName: "GetSecretValue",
      readOnly: true,
      protocol: "awsJson1_1",
      resources: [
        { arn: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:prod/db`, type: "AWS::SecretsManager::Secret" },
      ],
      requestParameters: { SecretId: "prod/db" },
    });
  });

  it("keeps an ARN as given and redacts the secret on create", () => {
    const arn = "arn:aws:secretsmanager:eu-west-1:111:secret:x-AbCdEf";
    expect(json("secretsmanager", "secretsmanager.DescribeSecret", { SecretId: arn }).resources[0]?.arn).toBe(arn);
    const create = json("secretsmanager", "secretsmanager.CreateSecret", { Name: "n", SecretString: "hunter2" });
    expect(create.readOnly).toBe(false);
    expect(create.resources[0]?.arn).toBe(`arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:n`);
    expect(create.requestParameters).toEqual({ Name: "n", SecretString: REDACTED });
    expect(JSON.stringify(create)).not.toContain("hunter2");
  });
});

describe("classifyRequest: STS", () => {
  it("GetCallerIdentity from a form body has no parameters", () => {
    expect(query("sts", "Action=GetCallerIdentity&Version=2011-06-15")).toEqual({
      service: "sts",
      eventSource: "sts.amazonaws.com",
      eventName: "GetCallerIdentity",
      awsRegion: "eu-west-1",
      readOnly: true,
      protocol: "awsQuery",
      resources: [],
      requestParameters: null,
      apiService: "sts",
      endpointPrefix: "sts",
    });
  });

  it("Action in the query string of a GET", () => {
    const result = classifyRequest({
      method: "GET",
      rawPath: "/",
      query: [
        ["Action", "GetCallerIdentity"],
        ["Version", "2011-06-15"],
      ],
      headers: {},
      signingName: "sts",
      region: "us-east-1",
      accountId: ACCOUNT,
    });
    expect(result.eventName).toBe("GetCallerIdentity");
  });

  it("AssumeRole names the role", () => {
    const roleArn = "arn:aws:iam::123456789012:role/deploy";
    const result = query(
      "sts",
      `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(roleArn)}&RoleSessionName=s+1`,
    );
    expect(result.eventName).toBe("AssumeRole");
    expect(result.readOnly).toBe(false);
    expect(result.resources).toEqual([{ arn: roleArn, type: "AWS::IAM::Role" }]);
    expect(result.requestParameters).toEqual({ RoleArn: roleArn, RoleSessionName: "s 1" });
  });

  it("ambiguous or invalid Action is Unknown", () => {
    expect(query("sts", "Action=Get%20Caller").eventName).toBe("Unknown");
    expect(query("sts", "Version=2011-06-15").eventName).toBe("Unknown");
    expect(query("sts", "\u0000\u0001binary").eventName).toBe("Unknown");
    const conflicting = classifyRequest({
      method: "POST",
      rawPath: "/",
      query: [["Action", "GetUser"]],
      headers: { "content-type": "application/x-www-form-urlencoded" },
      signingName: "iam",
      region: "us-east-1",
      accountId: ACCOUNT,
      body: Buffer.from("Action=DeleteUser&UserName=bob"),
    });
    expect(conflicting.eventName).toBe("Unknown");
    expect(conflicting.readOnly).toBe(false);
  });
});

describe("classifyRequest: IAM", () => {
  it("is global: recorded in us-east-1 whatever region signed it", () => {
    const result = query("iam", "Action=GetUser&Version=2010-05-08&UserName=bob");
    expect(result).toEqual({
      service: "iam",
      eventSource: "iam.amazonaws.com",
      eventName: "GetUser",
      awsRegion: "us-east-1",
      readOnly: true,
      protocol: "awsQuery",
      resources: [{ arn: `arn:aws:iam::${ACCOUNT}:user/bob`, type: "AWS::IAM::User" }],
      requestParameters: { UserName: "bob" },
      apiService: "iam",
      endpointPrefix: "iam",
    });
  });

  it("resources for users, roles, groups, policies and instance profiles", () => {
    const policy = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    const attach = query("iam", `Action=AttachRolePolicy&RoleName=r&PolicyArn=${encodeURIComponent(policy)}`);
    expect(attach.resources).toEqual([
      { arn: `arn:aws:iam::${ACCOUNT}:role/r`, type: "AWS::IAM::Role" },
      { arn: policy, type: "AWS::IAM::Policy" },
    ]);
    const group = query("iam", "Action=AddUserToGroup&GroupName=g&UserName=u");
    expect(group.resources.map((r) => r.arn)).toEqual([
      `arn:aws:iam::${ACCOUNT}:user/u`,
      `arn:aws:iam::${ACCOUNT}:group/g`,
    ]);
    const profile = query("iam", "Action=AddRoleToInstanceProfile&InstanceProfileName=p&RoleName=r");
    expect(profile.resources.map((r) => r.type)).toEqual(["AWS::IAM::Role", "AWS::IAM::InstanceProfile"]);
    const created = query("iam", "Action=CreateUser&UserName=u&Path=%2Fteam%2F");
    expect(created.resources[0]?.arn).toBe(`arn:aws:iam::${ACCOUNT}:user/team/u`);
  });

  it("empty account keeps an empty ARN field; passwords are redacted", () => {
    const result = query("iam", "Action=CreateLoginProfile&UserName=bob&Password=s3cret", "eu-west-1", "");
    expect(result.resources[0]?.arn).toBe("arn:aws:iam:::user/bob");
    expect(result.requestParameters).toEqual({ UserName: "bob", Password: REDACTED });
    expect(result.readOnly).toBe(false);
  });
});

describe("classifyRequest: EC2", () => {
  it("instances from InstanceId.N, flat parameters", () => {
    const result = query("ec2", "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2");
    expect(result).toEqual({
      service: "ec2",
      eventSource: "ec2.amazonaws.com",
      eventName: "TerminateInstances",
      awsRegion: "eu-west-1",
      readOnly: false,
      protocol: "ec2Query",
      resources: [
        { arn: `arn:aws:ec2:eu-west-1:${ACCOUNT}:instance/i-1`, type: "AWS::EC2::Instance" },
        { arn: `arn:aws:ec2:eu-west-1:${ACCOUNT}:instance/i-2`, type: "AWS::EC2::Instance" },
      ],
      requestParameters: { "InstanceId.1": "i-1", "InstanceId.2": "i-2" },
      apiService: "ec2",
      endpointPrefix: "ec2",
    });
  });

  it("volumes, security groups, VPCs, subnets and images (no account)", () => {
    const result = query(
      "ec2",
      "Action=RunInstances&ImageId=ami-1&SubnetId=subnet-1&SecurityGroupId.1=sg-1&MinCount=1&MaxCount=1",
    );
    expect(result.resources).toEqual([
      { arn: `arn:aws:ec2:eu-west-1:${ACCOUNT}:security-group/sg-1`, type: "AWS::EC2::SecurityGroup" },
      { arn: `arn:aws:ec2:eu-west-1:${ACCOUNT}:subnet/subnet-1`, type: "AWS::EC2::Subnet" },
      { arn: "arn:aws:ec2:eu-west-1::image/ami-1", type: "AWS::EC2::Image" },
    ]);
    const attach = query("ec2", "Action=AttachVolume&VolumeId=vol-1&InstanceId=i-9&Device=%2Fdev%2Fsdf");
    expect(attach.resources.map((r) => r.type)).toEqual(["AWS::EC2::Instance", "AWS::EC2::Volume"]);
    const vpc = query("ec2", "Action=DescribeVpcs&VpcId.1=vpc-1&GroupId=sg-2");
    expect(vpc.readOnly).toBe(true);
    expect(vpc.resources.map((r) => r.arn)).toEqual([
      `arn:aws:ec2:eu-west-1:${ACCOUNT}:security-group/sg-2`,
      `arn:aws:ec2:eu-west-1:${ACCOUNT}:vpc/vpc-1`,
    ]);
  });
});

describe("classifyRequest: other services", () => {
  it("x-amz-target → awsJson with the protocol from the content type", () => {
    const ssm = json(
      "ssm",
      "AmazonSSM.PutParameter",
      { Name: "/db/password", Value: "v", Type: "SecureString" },
      { "content-type": "application/x-amz-json-1.1" },
    );
    expect(ssm).toMatchObject({
      service: "ssm",
      eventSource: "ssm.amazonaws.com",
      eventName: "PutParameter",
      readOnly: false,
      protocol: "awsJson1_1",
      requestParameters: { Name: "/db/password", Value: REDACTED, Type: "SecureString" },
    });
    const sqs = json("sqs", "AmazonSQS.ListQueues", {});
    expect(sqs).toMatchObject({ eventName: "ListQueues", readOnly: true, protocol: "awsJson1_0" });
    expect(sqs.requestParameters).toBeNull();
  });

  it("Action= → awsQuery", () => {
    const sns = query("sns", "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A1%3At&Message=hi");
    expect(sns).toMatchObject({ service: "sns", eventName: "Publish", protocol: "awsQuery", readOnly: false });
    expect(sns.requestParameters).toEqual({ TopicArn: "arn:aws:sns:eu-west-1:1:t", Message: "hi" });
    expect(query("monitoring", "Action=DescribeAlarms").readOnly).toBe(true);
  });

  it("rest-json operations come from the models (the old hand-written classifier left Lambda Unknown)", () => {
    const lambda = classifyRequest({
      method: "POST",
      rawPath: "/2015-03-31/functions/f/invocations",
      query: [],
      headers: { "content-type": "application/json" },
      signingName: "lambda",
      region: "eu-west-1",
      accountId: ACCOUNT,
      body: Buffer.from([0, 1, 2, 255]),
    });
    expect(lambda).toEqual({
      service: "lambda",
      eventSource: "lambda.amazonaws.com",
      eventName: "Invoke",
      awsRegion: "eu-west-1",
      readOnly: false,
      protocol: "restJson",
      resources: [{ arn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:f`, type: "AWS::Lambda::Function" }],
      requestParameters: { FunctionName: "f" },
      apiService: "lambda",
      endpointPrefix: "lambda",
    });
  });

  it("an unknown rest path is Unknown and never throws", () => {
    const result = classifyRequest({
      method: "PATCH",
      rawPath: "/nothing/%zz",
      query: [],
      headers: {},
      signingName: "lambda",
      region: "eu-west-1",
      accountId: ACCOUNT,
      body: Buffer.from([0, 1, 2, 255]),
    });
    expect(result).toMatchObject({ eventName: "Unknown", readOnly: false, protocol: "restJson", resources: [] });
    expect(result.requestParameters).toBeNull();
  });

  it("an invalid signing name becomes service 'unknown'", () => {
    const result = json("bad.name>", "X.GetThing", "{}");
    expect(result.service).toBe("unknown");
    expect(result.eventSource).toBe("unknown.amazonaws.com");
  });
});
