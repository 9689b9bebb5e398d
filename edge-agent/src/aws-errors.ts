/**
 * Errors the edge itself returns to AWS clients, rendered in the shape each wire protocol uses so
 * that the AWS SDKs (v3, botocore, the aws CLI) raise the error class they would for real AWS.
 */
import type { AwsProtocol } from "./aws-classifier.js";

/** One error response to render. */
export interface AwsErrorSpec {
  /** AWS error code, e.g. `"SignatureDoesNotMatch"`. */
  code: string;
  /** Human-readable message (escaped as needed). */
  message: string;
  /** HTTP status, e.g. 403. */
  status: number;
  /** Request id reported in the body and headers. */
  requestId: string;
  /** Short service name; only used for the awsQuery XML namespace. Default: a generic namespace. */
  service?: string;
}

/** A rendered error: write `status`, `headers` and `body` as they are. */
export interface AwsErrorResponse {
  status: number;
  /** The AWS error code rendered (e.g. `SignatureDoesNotMatch`). */
  code: string;
  /** Includes `content-type`, `content-length` and the protocol's request-id header. */
  headers: Record<string, string>;
  body: string;
}

/** Errors the edge raises on its own, independent of protocol. */
export type EdgeErrorKind =
  | "signature-mismatch"
  | "unknown-access-key"
  | "expired-token"
  | "clock-skew"
  | "missing-auth"
  | "malformed-auth"
  | "unsupported-auth"
  | "access-denied"
  | "unavailable"
  | "not-implemented"
  | "request-too-large"
  | "internal";

/** Renders an AWS error response in the protocol's shape. */
export function renderAwsError(protocol: AwsProtocol, spec: AwsErrorSpec): AwsErrorResponse {
  return { code: spec.code, ...renderShape(protocol, spec) };
}

function renderShape(protocol: AwsProtocol, spec: AwsErrorSpec): Omit<AwsErrorResponse, "code"> {
  switch (protocol) {
    case "restXml":
      return finish(spec.status, "application/xml", { "x-amz-request-id": spec.requestId }, restXmlBody(spec));
    case "awsQuery":
      return finish(spec.status, "text/xml", { "x-amzn-RequestId": spec.requestId }, queryBody(spec));
    case "ec2Query":
      return finish(spec.status, "text/xml;charset=UTF-8", { "x-amzn-RequestId": spec.requestId }, ec2Body(spec));
    case "awsJson1_0":
    case "awsJson1_1":
    // RPC v2 CBOR clients get the awsJson 1.0 shape until a CBOR encoder exists (no SDK parses it).
    case "smithyRpcV2Cbor":
      return finish(
        spec.status,
        protocol !== "awsJson1_1" ? "application/x-amz-json-1.0" : "application/x-amz-json-1.1",
        { "x-amzn-RequestId": spec.requestId, "x-amzn-ErrorType": headerSafe(spec.code) },
        JSON.stringify({ __type: spec.code, message: spec.message }),
      );
    case "restJson":
      return finish(
        spec.status,
        "application/json",
        { "x-amzn-RequestId": spec.requestId, "x-amzn-ErrorType": headerSafe(spec.code) },
        JSON.stringify({ message: spec.message }),
      );
  }
}

type ErrorFamily = "s3" | "query" | "ec2" | "awsJson" | "restJson";

/** [code, status] per protocol family. */
type FamilyTable = Readonly<Record<ErrorFamily, readonly [string, number]>>;

/**
 * What real AWS returns for each edge-level failure. Notes on the less obvious choices:
 * - JSON services answer authentication failures with `...Exception` codes and status 400
 *   (DynamoDB, Secrets Manager); rest-json services (Lambda, ...) use 403.
 * - EC2 reports an unknown key as `AuthFailure` (401) and expired temporary credentials as
 *   `RequestExpired` (400), as its error documentation says.
 * - Clock skew: S3 says `RequestTimeTooSkewed`; the others reject the signature ("Signature
 *   expired"). All of these codes make SDK v3 correct its clock from the `Date` header.
 */
const EDGE_ERRORS: Readonly<Record<EdgeErrorKind, FamilyTable>> = {
  "signature-mismatch": {
    s3: ["SignatureDoesNotMatch", 403],
    query: ["SignatureDoesNotMatch", 403],
    ec2: ["SignatureDoesNotMatch", 403],
    awsJson: ["InvalidSignatureException", 400],
    restJson: ["InvalidSignatureException", 403],
  },
  "unknown-access-key": {
    s3: ["InvalidAccessKeyId", 403],
    query: ["InvalidClientTokenId", 403],
    ec2: ["AuthFailure", 401],
    awsJson: ["UnrecognizedClientException", 400],
    restJson: ["UnrecognizedClientException", 403],
  },
  "expired-token": {
    s3: ["ExpiredToken", 400],
    query: ["ExpiredToken", 403],
    ec2: ["RequestExpired", 400],
    awsJson: ["ExpiredTokenException", 400],
    restJson: ["ExpiredTokenException", 403],
  },
  "clock-skew": {
    s3: ["RequestTimeTooSkewed", 403],
    query: ["SignatureDoesNotMatch", 403],
    ec2: ["RequestExpired", 400],
    awsJson: ["InvalidSignatureException", 400],
    restJson: ["InvalidSignatureException", 403],
  },
  "missing-auth": {
    s3: ["AccessDenied", 403],
    query: ["MissingAuthenticationToken", 403],
    ec2: ["MissingAuthenticationToken", 401],
    awsJson: ["MissingAuthenticationTokenException", 403],
    restJson: ["MissingAuthenticationTokenException", 403],
  },
  "malformed-auth": {
    s3: ["AuthorizationHeaderMalformed", 400],
    query: ["IncompleteSignature", 400],
    ec2: ["IncompleteSignature", 400],
    awsJson: ["IncompleteSignatureException", 400],
    restJson: ["IncompleteSignatureException", 403],
  },
  // A SigV2 signature (S3 only): S3's own answer in regions that accept SigV4 only.
  "unsupported-auth": {
    s3: ["InvalidRequest", 400],
    query: ["IncompleteSignature", 400],
    ec2: ["IncompleteSignature", 400],
    awsJson: ["IncompleteSignatureException", 400],
    restJson: ["IncompleteSignatureException", 403],
  },
  "access-denied": {
    s3: ["AccessDenied", 403],
    query: ["AccessDenied", 403],
    ec2: ["UnauthorizedOperation", 403],
    awsJson: ["AccessDeniedException", 400],
    restJson: ["AccessDeniedException", 403],
  },
  unavailable: {
    s3: ["ServiceUnavailable", 503],
    query: ["ServiceUnavailable", 503],
    ec2: ["Unavailable", 503],
    awsJson: ["ServiceUnavailableException", 503],
    restJson: ["ServiceUnavailableException", 503],
  },
  "not-implemented": {
    s3: ["NotImplemented", 501],
    query: ["NotImplemented", 501],
    ec2: ["NotImplemented", 501],
    awsJson: ["NotImplemented", 501],
    restJson: ["NotImplemented", 501],
  },
  "request-too-large": {
    s3: ["EntityTooLarge", 400],
    query: ["RequestEntityTooLarge", 413],
    ec2: ["RequestEntityTooLarge", 413],
    awsJson: ["RequestEntityTooLarge", 413],
    restJson: ["RequestEntityTooLarge", 413],
  },
  internal: {
    s3: ["InternalError", 500],
    query: ["InternalFailure", 500],
    ec2: ["InternalError", 500],
    awsJson: ["InternalFailure", 500],
    restJson: ["InternalFailure", 500],
  },
};

/**
 * Renders an edge-level failure with the code and status real AWS uses for the protocol (see
 * the table in this module). S3 codes apply to rest-xml S3 only; other rest-xml services
 * (Route 53, CloudFront) get the query-protocol codes.
 *
 * @param kind - what went wrong at the edge.
 * @param protocol - protocol of the request (from the classifier, or a best guess before it).
 * @param service - short service name (signing name), e.g. `"s3"`.
 * @param message - message for the client; must not contain internal details.
 * @param requestId - the edge's request id for this call.
 */
export function edgeError(
  kind: EdgeErrorKind,
  protocol: AwsProtocol,
  service: string,
  message: string,
  requestId: string,
): AwsErrorResponse {
  const [code, status] = EDGE_ERRORS[kind][familyOf(protocol, service)];
  return renderAwsError(protocol, { code, status, message, requestId, service });
}

function familyOf(protocol: AwsProtocol, service: string): ErrorFamily {
  switch (protocol) {
    case "restXml":
      return service === "s3" ? "s3" : "query";
    case "awsQuery":
      return "query";
    case "ec2Query":
      return "ec2";
    case "awsJson1_0":
    case "awsJson1_1":
    case "smithyRpcV2Cbor":
      return "awsJson";
    case "restJson":
      return "restJson";
  }
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

function restXmlBody(spec: AwsErrorSpec): string {
  return (
    `${XML_DECLARATION}<Error><Code>${xml(spec.code)}</Code><Message>${xml(spec.message)}</Message>` +
    `<RequestId>${xml(spec.requestId)}</RequestId></Error>`
  );
}

/** XML namespaces of the query services whose SDK models we know; others get a generic one. */
const QUERY_NAMESPACES: Readonly<Record<string, string>> = {
  sts: "https://sts.amazonaws.com/doc/2011-06-15/",
  iam: "https://iam.amazonaws.com/doc/2010-05-08/",
};

function queryBody(spec: AwsErrorSpec): string {
  const service = spec.service !== undefined && /^[a-z0-9-]+$/.test(spec.service) ? spec.service : undefined;
  const namespace =
    (service === undefined ? undefined : QUERY_NAMESPACES[service]) ?? `https://${service ?? "aws"}.amazonaws.com/doc/`;
  const type = spec.status >= 500 ? "Receiver" : "Sender";
  return (
    `${XML_DECLARATION}<ErrorResponse xmlns="${xml(namespace)}"><Error><Type>${type}</Type>` +
    `<Code>${xml(spec.code)}</Code><Message>${xml(spec.message)}</Message></Error>` +
    `<RequestId>${xml(spec.requestId)}</RequestId></ErrorResponse>`
  );
}

function ec2Body(spec: AwsErrorSpec): string {
  return (
    `${XML_DECLARATION}<Response><Errors><Error><Code>${xml(spec.code)}</Code>` +
    `<Message>${xml(spec.message)}</Message></Error></Errors>` +
    `<RequestID>${xml(spec.requestId)}</RequestID></Response>`
  );
}

function finish(
  status: number,
  contentType: string,
  extraHeaders: Record<string, string>,
  body: string,
): Omit<AwsErrorResponse, "code"> {
  const headers: Record<string, string> = {
    "content-type": contentType,
    "content-length": String(Buffer.byteLength(body, "utf8")),
  };
  for (const [name, value] of Object.entries(extraHeaders)) headers[name] = headerSafe(value);
  return { status, headers, body };
}

/** Escapes XML text and attribute values and drops characters XML 1.0 cannot carry. */
function xml(text: string): string {
  return Array.from(text)
    .filter(isXmlChar)
    .join("")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** The XML 1.0 `Char` production (lone surrogates and most control characters are excluded). */
function isXmlChar(char: string): boolean {
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x20) return code === 0x09 || code === 0x0a || code === 0x0d;
  if (code >= 0xd800 && code <= 0xdfff) return false;
  return code !== 0xfffe && code !== 0xffff;
}

/** Header values must not carry control characters (node would throw on CR/LF). */
function headerSafe(value: string): string {
  return Array.from(value)
    .filter((char) => {
      const code = char.codePointAt(0) ?? 0;
      return code === 0x09 || (code >= 0x20 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
    })
    .join("");
}
