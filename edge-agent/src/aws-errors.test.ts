import { Readable } from "node:stream";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { HeadObjectCommand, ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { HttpResponse } from "@smithy/core/protocols";
import { describe, expect, it } from "vitest";
import type { AwsProtocol } from "./aws-classifier.js";
import { type AwsErrorResponse, type EdgeErrorKind, edgeError, renderAwsError } from "./aws-errors.js";
import { parseAwsResponse } from "./aws-response-parser.js";

const PROTOCOLS: AwsProtocol[] = ["restXml", "awsQuery", "ec2Query", "awsJson1_0", "awsJson1_1", "restJson"];
const KINDS: EdgeErrorKind[] = [
  "signature-mismatch",
  "unknown-access-key",
  "expired-token",
  "clock-skew",
  "missing-auth",
  "malformed-auth",
  "unsupported-auth",
  "access-denied",
  "unavailable",
  "not-implemented",
  "request-too-large",
  "internal",
];

function parseBack(protocol: AwsProtocol, rendered: AwsErrorResponse) {
  return parseAwsResponse({
    protocol,
    status: rendered.status,
    headers: rendered.headers,
    body: Buffer.from(rendered.body),
    service: "x",
    operation: "Op",
    truncated: false,
  });
}

describe("renderAwsError", () => {
  it("S3: bare <Error> document", () => {
    const rendered = renderAwsError("restXml", {
      code: "SignatureDoesNotMatch",
      message: "The request signature we calculated does not match the signature you provided.",
      status: 403,
      requestId: "R1",
    });
    expect(rendered.status).toBe(403);
    expect(rendered.body).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>' +
        "<Message>The request signature we calculated does not match the signature you provided.</Message>" +
        "<RequestId>R1</RequestId></Error>",
    );
    expect(rendered.headers).toEqual({
      "content-type": "application/xml",
      "content-length": String(Buffer.byteLength(rendered.body)),
      "x-amz-request-id": "R1",
    });
  });

  it("awsQuery: <ErrorResponse> with Sender/Receiver type and the service namespace", () => {
    const sender = renderAwsError("awsQuery", { code: "C", message: "m", status: 403, requestId: "r", service: "sts" });
    expect(sender.body).toContain('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">');
    expect(sender.body).toContain("<Error><Type>Sender</Type><Code>C</Code><Message>m</Message></Error>");
    expect(sender.body).toContain("<RequestId>r</RequestId></ErrorResponse>");
    expect(sender.headers).toMatchObject({ "content-type": "text/xml", "x-amzn-RequestId": "r" });
    const receiver = renderAwsError("awsQuery", { code: "C", message: "m", status: 503, requestId: "r" });
    expect(receiver.body).toContain("<Type>Receiver</Type>");
  });

  it("ec2Query: <Response><Errors>", () => {
    const rendered = renderAwsError("ec2Query", { code: "AuthFailure", message: "m", status: 401, requestId: "r" });
    expect(rendered.body).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>AuthFailure</Code><Message>m</Message>' +
        "</Error></Errors><RequestID>r</RequestID></Response>",
    );
  });

  it("awsJson and restJson", () => {
    const json10 = renderAwsError("awsJson1_0", { code: "C", message: 'say "hi"', status: 400, requestId: "r" });
    expect(JSON.parse(json10.body)).toEqual({ __type: "C", message: 'say "hi"' });
    expect(json10.headers).toEqual({
      "content-type": "application/x-amz-json-1.0",
      "content-length": String(Buffer.byteLength(json10.body)),
      "x-amzn-RequestId": "r",
      "x-amzn-ErrorType": "C",
    });
    const json11 = renderAwsError("awsJson1_1", { code: "C", message: "m", status: 400, requestId: "r" });
    expect(json11.headers["content-type"]).toBe("application/x-amz-json-1.1");
    const rest = renderAwsError("restJson", { code: "C", message: "m", status: 403, requestId: "r" });
    expect(JSON.parse(rest.body)).toEqual({ message: "m" });
    expect(rest.headers).toMatchObject({ "content-type": "application/json", "x-amzn-ErrorType": "C" });
  });

  it("escapes XML and keeps headers valid", () => {
    const message = `a & b < c > d "e" 'f' \u0000\u0007 ünï 🚀`;
    for (const protocol of PROTOCOLS) {
      const rendered = renderAwsError(protocol, { code: "C", message, status: 400, requestId: "r\r\nx: y" });
      expect(rendered.headers["content-length"]).toBe(String(Buffer.byteLength(rendered.body, "utf8")));
      for (const value of Object.values(rendered.headers)) expect(value).not.toMatch(/[\r\n]/);
      const parsed = parseBack(protocol, rendered);
      expect(parsed.errorCode).toBe("C");
      if (protocol === "restXml" || protocol === "awsQuery" || protocol === "ec2Query") {
        expect(rendered.body).toContain("a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;");
        expect(parsed.errorMessage).toBe(`a & b < c > d "e" 'f'  ünï 🚀`);
      } else {
        expect(parsed.errorMessage).toBe(message);
      }
    }
  });
});

describe("edgeError", () => {
  it.each(PROTOCOLS.flatMap((protocol) => KINDS.map((kind) => [protocol, kind] as const)))(
    "%s %s round-trips through the response parser",
    (protocol, kind) => {
      const service = protocol === "restXml" ? "s3" : "svc";
      const rendered = edgeError(kind, protocol, service, `msg for ${kind}`, "req-1");
      const parsed = parseBack(protocol, rendered);
      expect(parsed.elements).toBeNull();
      expect(parsed.errorMessage).toBe(`msg for ${kind}`);
      expect(parsed.errorCode).toMatch(/^[A-Za-z]+$/);
      // The code the edge records in the audit event is the one the client parses.
      expect(rendered.code).toBe(parsed.errorCode);
      if (protocol !== "awsJson1_0" && protocol !== "awsJson1_1" && protocol !== "restJson") {
        expect(parsed.requestId).toBe("req-1");
      }
      expect(rendered.status).toBeGreaterThanOrEqual(400);
    },
  );

  it.each([
    ["signature-mismatch", "restXml", "s3", "SignatureDoesNotMatch", 403],
    ["signature-mismatch", "awsQuery", "sts", "SignatureDoesNotMatch", 403],
    ["signature-mismatch", "ec2Query", "ec2", "SignatureDoesNotMatch", 403],
    ["signature-mismatch", "awsJson1_0", "dynamodb", "InvalidSignatureException", 400],
    ["unknown-access-key", "restXml", "s3", "InvalidAccessKeyId", 403],
    ["unknown-access-key", "awsQuery", "iam", "InvalidClientTokenId", 403],
    ["unknown-access-key", "ec2Query", "ec2", "AuthFailure", 401],
    ["unknown-access-key", "awsJson1_1", "secretsmanager", "UnrecognizedClientException", 400],
    ["expired-token", "restXml", "s3", "ExpiredToken", 400],
    ["expired-token", "awsQuery", "sts", "ExpiredToken", 403],
    ["expired-token", "ec2Query", "ec2", "RequestExpired", 400],
    ["expired-token", "awsJson1_0", "dynamodb", "ExpiredTokenException", 400],
    ["clock-skew", "restXml", "s3", "RequestTimeTooSkewed", 403],
    ["missing-auth", "restXml", "s3", "AccessDenied", 403],
    ["missing-auth", "awsQuery", "sts", "MissingAuthenticationToken", 403],
    ["missing-auth", "awsJson1_0", "dynamodb", "MissingAuthenticationTokenException", 403],
    ["malformed-auth", "restXml", "s3", "AuthorizationHeaderMalformed", 400],
    ["malformed-auth", "awsQuery", "sts", "IncompleteSignature", 400],
    ["malformed-auth", "awsJson1_0", "dynamodb", "IncompleteSignatureException", 400],
    ["unsupported-auth", "restXml", "s3", "InvalidRequest", 400],
    ["access-denied", "restXml", "s3", "AccessDenied", 403],
    ["access-denied", "awsQuery", "iam", "AccessDenied", 403],
    ["access-denied", "ec2Query", "ec2", "UnauthorizedOperation", 403],
    ["access-denied", "awsJson1_0", "dynamodb", "AccessDeniedException", 400],
    ["unavailable", "restXml", "s3", "ServiceUnavailable", 503],
    ["unavailable", "awsJson1_0", "dynamodb", "ServiceUnavailableException", 503],
    ["not-implemented", "awsQuery", "sts", "NotImplemented", 501],
    ["request-too-large", "restXml", "s3", "EntityTooLarge", 400],
    ["request-too-large", "awsJson1_1", "secretsmanager", "RequestEntityTooLarge", 413],
    ["internal", "restXml", "s3", "InternalError", 500],
    ["internal", "awsQuery", "sts", "InternalFailure", 500],
    ["unknown-access-key", "restXml", "route53", "InvalidClientTokenId", 403],
  ] as const)("%s via %s (%s) → %s %i", (kind, protocol, service, code, status) => {
    const rendered = edgeError(kind, protocol, service, "m", "r");
    expect(rendered.status).toBe(status);
    expect(parseBack(protocol, rendered).errorCode).toBe(code);
  });
});

/** A request handler answering every request with one canned HTTP response: the SDK's real deserializers run. */
function cannedHandler(rendered: AwsErrorResponse) {
  return {
    handle: async () => ({
      response: new HttpResponse({
        statusCode: rendered.status,
        headers: rendered.headers,
        body: Readable.from([Buffer.from(rendered.body)]),
      }),
    }),
  };
}

const clientConfig = (rendered: AwsErrorResponse) => ({
  region: "eu-west-1",
  endpoint: "http://127.0.0.1:9",
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
  maxAttempts: 1,
  requestHandler: cannedHandler(rendered),
});

async function sdkError(send: () => Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await send();
  } catch (err) {
    const error = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: error.name, message: error.message, status: error.$metadata?.httpStatusCode };
  }
  throw new Error("expected the SDK call to fail");
}

describe("AWS SDK v3 deserializes edge errors", () => {
  it("S3 (rest-xml): SignatureDoesNotMatch 403", async () => {
    const rendered = edgeError("signature-mismatch", "restXml", "s3", "The signature does not match.", "R1");
    const client = new S3Client({ ...clientConfig(rendered), forcePathStyle: true });
    const error = await sdkError(() => client.send(new ListBucketsCommand({})));
    expect(error).toEqual({ name: "SignatureDoesNotMatch", message: "The signature does not match.", status: 403 });
  });

  it("S3 (rest-xml): InvalidAccessKeyId 403", async () => {
    const rendered = edgeError("unknown-access-key", "restXml", "s3", "The AWS Access Key Id does not exist.", "R2");
    const client = new S3Client({ ...clientConfig(rendered), forcePathStyle: true });
    const error = await sdkError(() => client.send(new HeadObjectCommand({ Bucket: "b", Key: "k" })));
    // Over real HTTP a HEAD response loses its body, leaving the SDK only the status.
    expect(error).toMatchObject({ name: "InvalidAccessKeyId", status: 403 });
  });

  it("STS (awsQuery): InvalidClientTokenId 403", async () => {
    const rendered = edgeError("unknown-access-key", "awsQuery", "sts", "The security token is invalid.", "R3");
    const client = new STSClient(clientConfig(rendered));
    const error = await sdkError(() => client.send(new GetCallerIdentityCommand({})));
    expect(error).toEqual({ name: "InvalidClientTokenId", message: "The security token is invalid.", status: 403 });
  });

  it("DynamoDB (awsJson1_0): UnrecognizedClientException 400", async () => {
    const rendered = edgeError("unknown-access-key", "awsJson1_0", "dynamodb", "The security token is invalid.", "R4");
    const client = new DynamoDBClient(clientConfig(rendered));
    const error = await sdkError(() => client.send(new ListTablesCommand({})));
    expect(error).toEqual({
      name: "UnrecognizedClientException",
      message: "The security token is invalid.",
      status: 400,
    });
  });

  it("DynamoDB (awsJson1_0): AccessDeniedException with an XML-hostile message", async () => {
    const rendered = edgeError("access-denied", "awsJson1_0", "dynamodb", 'Denied by policy "p" <x> & y', "R5");
    const client = new DynamoDBClient(clientConfig(rendered));
    const error = await sdkError(() => client.send(new ListTablesCommand({})));
    expect(error).toEqual({ name: "AccessDeniedException", message: 'Denied by policy "p" <x> & y', status: 400 });
  });

  it("S3 (rest-xml): AccessDenied with an XML-hostile message", async () => {
    const rendered = edgeError("access-denied", "restXml", "s3", 'Denied by policy "p" <x> & y', "R6");
    const client = new S3Client({ ...clientConfig(rendered), forcePathStyle: true });
    const error = await sdkError(() => client.send(new ListBucketsCommand({})));
    expect(error).toEqual({ name: "AccessDenied", message: 'Denied by policy "p" <x> & y', status: 403 });
  });
});
