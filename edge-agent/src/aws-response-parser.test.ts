import { describe, expect, it } from "vitest";
import type { AwsProtocol } from "./aws-classifier.js";
import { type ParseAwsResponseArgs, parseAwsResponse, upstreamRequestId } from "./aws-response-parser.js";
import { REDACTED } from "./sensitive-redaction.js";

function parse(
  protocol: AwsProtocol,
  status: number,
  body: string | Buffer,
  overrides: Partial<ParseAwsResponseArgs> = {},
) {
  return parseAwsResponse({
    protocol,
    status,
    headers: {},
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
    service: "s3",
    operation: "Op",
    truncated: false,
    ...overrides,
  });
}

describe("parseAwsResponse: errors", () => {
  it("S3 <Error>", () => {
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The key &amp; &lt;x&gt;</Message>' +
      "<Key>k</Key><RequestId>R1</RequestId><HostId>h</HostId></Error>";
    expect(parse("restXml", 404, body)).toEqual({
      elements: null,
      errorCode: "NoSuchKey",
      errorMessage: "The key & <x>",
      requestId: "R1",
    });
  });

  it("S3 301 redirect and 200 bodies that are errors", () => {
    const redirect = "<Error><Code>PermanentRedirect</Code><Message>use the endpoint</Message></Error>";
    expect(parse("restXml", 301, redirect)).toMatchObject({ errorCode: "PermanentRedirect" });
    const copy = "<Error><Code>InternalError</Code><Message>try again</Message><RequestId>R</RequestId></Error>";
    expect(parse("restXml", 200, copy, { operation: "CopyObject" })).toEqual({
      elements: null,
      errorCode: "InternalError",
      errorMessage: "try again",
      requestId: "R",
    });
  });

  it("awsQuery <ErrorResponse>", () => {
    const body =
      '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>' +
      "<Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message>" +
      "</Error><RequestId>abc-123</RequestId></ErrorResponse>";
    expect(parse("awsQuery", 403, body, { service: "sts" })).toEqual({
      elements: null,
      errorCode: "InvalidClientTokenId",
      errorMessage: "The security token included in the request is invalid.",
      requestId: "abc-123",
    });
  });

  it("EC2 <Response><Errors>", () => {
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>' +
      "<Message>The instance ID 'i-1' does not exist</Message></Error></Errors><RequestID>ec2-req</RequestID></Response>";
    expect(parse("ec2Query", 400, body, { service: "ec2" })).toEqual({
      elements: null,
      errorCode: "InvalidInstanceID.NotFound",
      errorMessage: "The instance ID 'i-1' does not exist",
      requestId: "ec2-req",
    });
  });

  it("JSON __type, code/Code and Message/message", () => {
    const dynamo = JSON.stringify({
      __type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
      message: "Requested resource not found",
    });
    expect(parse("awsJson1_0", 400, dynamo)).toEqual({
      elements: null,
      errorCode: "ResourceNotFoundException",
      errorMessage: "Requested resource not found",
    });
    expect(parse("awsJson1_1", 400, '{"code":"Throttling","Message":"slow down"}')).toMatchObject({
      errorCode: "Throttling",
      errorMessage: "slow down",
    });
    expect(parse("restJson", 404, '{"Code":"NotFound:http://x","message":"m"}').errorCode).toBe("NotFound");
  });

  it("x-amzn-errortype header wins for JSON protocols", () => {
    const result = parse("restJson", 404, '{"Type":"User","message":"Function not found"}', {
      headers: { "x-amzn-errortype": "ResourceNotFoundException:http://internal.amazon.com/coral/" },
    });
    expect(result).toMatchObject({ errorCode: "ResourceNotFoundException", errorMessage: "Function not found" });
  });

  it("HEAD errors without a body take the code from the status", () => {
    expect(parse("restXml", 404, "")).toEqual({ elements: null, errorCode: "NotFound" });
    expect(parse("restXml", 403, "").errorCode).toBe("Forbidden");
    expect(parse("restXml", 400, "").errorCode).toBe("BadRequest");
    expect(parse("restXml", 301, "").errorCode).toBe("MovedPermanently");
    expect(parse("restXml", 304, "").errorCode).toBe("NotModified");
    expect(parse("restXml", 599, "").errorCode).toBe("Http599");
  });

  it("truncated or invalid XML error bodies still yield what can be read", () => {
    const body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R9</RequestId><HostI";
    expect(parse("restXml", 403, body, { truncated: true })).toEqual({
      elements: null,
      errorCode: "AccessDenied",
      errorMessage: "Access Denied",
      requestId: "R9",
    });
  });

  it("garbage error bodies fall back to the status", () => {
    expect(parse("awsJson1_0", 500, "<html>oops")).toEqual({ elements: null, errorCode: "InternalServerError" });
    expect(parse("awsJson1_0", 502, "Bad gateway")).toEqual({ elements: null, errorCode: "BadGateway" });
  });
});

describe("parseAwsResponse: success", () => {
  it("awsQuery: elements are the *Result contents, request id from ResponseMetadata", () => {
    const body =
      '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>' +
      "<Arn>arn:aws:iam::012345678901:user/bob</Arn><UserId>AIDA1</UserId><Account>012345678901</Account>" +
      "</GetCallerIdentityResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>" +
      "</GetCallerIdentityResponse>";
    expect(parse("awsQuery", 200, body, { service: "sts", operation: "GetCallerIdentity" })).toEqual({
      elements: { Arn: "arn:aws:iam::012345678901:user/bob", UserId: "AIDA1", Account: "012345678901" },
      requestId: "req-1",
    });
  });

  it("awsQuery: credentials are redacted; calls without a Result have no elements", () => {
    const body =
      "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId>" +
      "<SecretAccessKey>sk</SecretAccessKey><SessionToken>tok</SessionToken></Credentials></AssumeRoleResult>" +
      "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>";
    expect(parse("awsQuery", 200, body, { service: "sts", operation: "AssumeRole" }).elements).toEqual({
      Credentials: { AccessKeyId: "ASIA", SecretAccessKey: REDACTED, SessionToken: REDACTED },
    });
    const del =
      "<DeleteUserResponse><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DeleteUserResponse>";
    expect(parse("awsQuery", 200, del, { service: "iam" })).toEqual({ elements: null, requestId: "r2" });
  });

  it("ec2Query: root children without requestId", () => {
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
      "<requestId>ec2-1</requestId><volumeSet><item><volumeId>vol-1</volumeId></item></volumeSet>" +
      "</DescribeVolumesResponse>";
    expect(parse("ec2Query", 200, body, { service: "ec2" })).toEqual({
      elements: { volumeSet: { item: { volumeId: "vol-1" } } },
      requestId: "ec2-1",
    });
    const key =
      "<CreateKeyPairResponse><requestId>r</requestId><keyMaterial>-----BEGIN</keyMaterial></CreateKeyPairResponse>";
    expect(parse("ec2Query", 200, key, { service: "ec2" }).elements).toEqual({ keyMaterial: REDACTED });
  });

  it("restXml: root children, repeated elements as arrays, strings kept as strings", () => {
    const body =
      "<ListBucketResult><Name>b</Name><KeyCount>2</KeyCount><Contents><Key>a</Key><ETag>&quot;1&quot;</ETag></Contents>" +
      "<Contents><Key>007</Key></Contents></ListBucketResult>";
    expect(parse("restXml", 200, body, { operation: "ListObjectsV2" })).toEqual({
      elements: { Name: "b", KeyCount: "2", Contents: [{ Key: "a", ETag: '"1"' }, { Key: "007" }] },
    });
    expect(parse("restXml", 200, "<LocationConstraint>eu-west-1</LocationConstraint>").elements).toEqual({
      LocationConstraint: "eu-west-1",
    });
  });

  it("restXml: object data is never parsed as response elements", () => {
    const xml = "<Secret><Password>x</Password><Note>private file</Note></Secret>";
    expect(parse("restXml", 200, xml, { operation: "GetObject" })).toEqual({ elements: null });
    expect(parse("restXml", 200, Buffer.from([0x89, 0x50, 0x4e, 0x47]), { operation: "GetObject" })).toEqual({
      elements: null,
    });
  });

  it("JSON bodies are parsed and redacted", () => {
    const body = JSON.stringify({ ARN: "arn", Name: "n", SecretString: "pw" });
    expect(parse("awsJson1_1", 200, body, { service: "secretsmanager", operation: "GetSecretValue" })).toEqual({
      elements: { ARN: "arn", Name: "n", SecretString: REDACTED },
    });
    expect(parse("awsJson1_0", 200, "{}").elements).toEqual({});
    expect(parse("awsJson1_0", 200, "[1]").elements).toBeNull();
  });

  it("empty and garbage bodies", () => {
    expect(parse("restXml", 200, "")).toEqual({ elements: null });
    expect(parse("awsJson1_0", 200, "\u0000\u0001")).toEqual({ elements: null });
    expect(parse("awsJson1_0", 200, "{bad json")).toEqual({ elements: null });
    expect(parse("awsQuery", 200, "<a><b></a>")).toEqual({ elements: null });
    expect(parse("restXml", 200, "<a><__proto__>1</__proto__></a>")).toEqual({ elements: null });
  });

  it("truncated bodies that cannot be parsed are marked as such", () => {
    expect(parse("awsJson1_0", 200, '{"Items":[{"id":', { truncated: true })).toEqual({
      elements: { truncated: true },
    });
    expect(parse("restXml", 200, "<ListBucketResult><Name>b</Na", { truncated: true })).toEqual({
      elements: { truncated: true },
    });
  });
});

describe("upstreamRequestId", () => {
  it("reads the request-id headers case-insensitively", () => {
    expect(upstreamRequestId({ "x-amzn-requestid": "a" })).toBe("a");
    expect(upstreamRequestId({ "x-amz-request-id": "b" })).toBe("b");
    expect(upstreamRequestId({ "x-amzn-request-id": "c" })).toBe("c");
    expect(upstreamRequestId({ "X-Amzn-RequestId": "d" })).toBe("d");
    expect(upstreamRequestId({ "x-amz-request-id": ["e", "f"] })).toBe("e");
    expect(upstreamRequestId({ "x-amz-id-2": "g" })).toBeUndefined();
  });
});
