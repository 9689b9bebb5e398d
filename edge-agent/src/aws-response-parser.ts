/**
 * Reads an upstream AWS response (or an edge-generated one) into audit-friendly parts: the
 * structured response elements, the error code and message, and the request id. Never throws.
 */
import { STATUS_CODES } from "node:http";
import { XMLParser } from "fast-xml-parser";
import type { AwsProtocol } from "./aws-classifier.js";
import { redactSensitive } from "./sensitive-redaction.js";

/** Header map as node gives it (names are usually lower-case; looked up case-insensitively). */
export type AwsHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What the audit record needs from an AWS response. */
export interface ParsedAwsResponse {
  /**
   * Structured response of a successful call: parsed JSON, or for XML the children of the root
   * element (for awsQuery the `*Result` element, for ec2Query without `requestId`), redacted.
   * `null` for errors and for empty, unparseable or payload (e.g. S3 `GetObject`) bodies;
   * `{ truncated: true }` when the body was cut short and could not be parsed.
   */
  elements: Record<string, unknown> | null;
  /** AWS error code, set for status >= 300 (S3 redirects included) and for 200 bodies that are AWS errors. */
  errorCode?: string;
  /** AWS error message, when the error body carries one. */
  errorMessage?: string;
  /** Request id found in an XML body (`RequestId`, `RequestID`, ec2 `requestId`). */
  requestId?: string;
}

/** Arguments of {@link parseAwsResponse}. */
export interface ParseAwsResponseArgs {
  /** Protocol of the request, from the classifier. */
  protocol: AwsProtocol;
  /** HTTP status of the response. */
  status: number;
  /** Response headers. */
  headers: AwsHeaders;
  /** Response body as captured (possibly only its first bytes, see `truncated`). */
  body: Buffer;
  /** Short service name, for redaction rules. */
  service: string;
  /** Operation name, for redaction rules and to skip payload bodies. */
  operation: string;
  /** Whether `body` holds only the first part of the response body. */
  truncated: boolean;
}

/** S3 operations whose body is object data (or an event stream), never response elements. */
const S3_PAYLOAD_OPERATIONS: ReadonlySet<string> = new Set(["GetObject", "GetObjectTorrent", "SelectObjectContent"]);

const xmlParser = new XMLParser({
  ignoreAttributes: true,
  // Keep every value a string: account ids, ETags and version ids must not become numbers.
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/** Parses an AWS response for the audit record. Never throws. */
export function parseAwsResponse(args: ParseAwsResponseArgs): ParsedAwsResponse {
  const isErrorStatus = args.status >= 300;
  const text = args.body.length === 0 ? "" : args.body.toString("utf8").replace(/^\uFEFF/, "");
  const trimmed = text.trimStart();
  const headerCode = errorTypeHeader(args.headers);

  let parsed: ParsedAwsResponse;
  if (trimmed === "") {
    parsed = { elements: null };
  } else if (trimmed.startsWith("<")) {
    parsed = parseXml(args, trimmed, isErrorStatus);
  } else if (trimmed.startsWith("{")) {
    parsed = parseJson(args, trimmed, isErrorStatus);
  } else {
    parsed = { elements: null };
  }

  if (isErrorStatus) {
    parsed.elements = null;
    // Like the SDKs: the x-amzn-errortype header wins over the body for JSON protocols.
    if (headerCode !== undefined && (isJsonProtocol(args.protocol) || parsed.errorCode === undefined)) {
      parsed.errorCode = headerCode;
    }
    parsed.errorCode ??= codeFromStatus(args.status);
  }
  return parsed;
}

/** The upstream request id from `x-amzn-requestid`, `x-amz-request-id` or `x-amzn-request-id`. */
export function upstreamRequestId(headers: AwsHeaders): string | undefined {
  for (const name of ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]) {
    const value = header(headers, name);
    if (value !== undefined && value !== "") return value;
  }
  return undefined;
}

function isJsonProtocol(protocol: AwsProtocol): boolean {
  return protocol === "awsJson1_0" || protocol === "awsJson1_1" || protocol === "restJson";
}

function header(headers: AwsHeaders, name: string): string | undefined {
  let value = headers[name];
  if (value === undefined) {
    for (const [key, candidate] of Object.entries(headers)) {
      if (key.toLowerCase() === name) {
        value = candidate;
        break;
      }
    }
  }
  return Array.isArray(value) ? value[0] : value;
}

function errorTypeHeader(headers: AwsHeaders): string | undefined {
  const value = header(headers, "x-amzn-errortype");
  return value === undefined ? undefined : sanitizeErrorCode(value);
}

/** As the SDKs do: `a.b#Code:http://...,more` → `Code`. */
function sanitizeErrorCode(raw: string): string | undefined {
  let code = raw.split(",")[0] ?? "";
  code = code.split(":")[0] ?? "";
  const hash = code.indexOf("#");
  if (hash >= 0) code = code.slice(hash + 1);
  code = code.trim();
  return code === "" ? undefined : code;
}

/** HEAD and other body-less errors: the status text without spaces, e.g. 404 → `NotFound`. */
function codeFromStatus(status: number): string {
  const text = STATUS_CODES[status];
  if (text === undefined) return `Http${status}`;
  return text.replace(/[^A-Za-z0-9]/g, "");
}

function unparseable(args: ParseAwsResponseArgs): ParsedAwsResponse {
  return { elements: args.truncated ? { truncated: true } : null };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringAt(value: unknown, ...path: string[]): string | undefined {
  let current = value;
  for (const key of path) {
    if (!isRecord(current)) return undefined;
    current = current[key];
  }
  if (typeof current === "string") return current;
  if (typeof current === "number" || typeof current === "boolean") return String(current);
  return undefined;
}

function redactedElements(args: ParseAwsResponseArgs, value: unknown): Record<string, unknown> | null {
  const redacted = redactSensitive(args.service, args.operation, value, "response");
  return isRecord(redacted) ? redacted : null;
}

function withOptional(result: ParsedAwsResponse, key: "errorCode" | "errorMessage" | "requestId", value?: string) {
  if (value !== undefined && value !== "") result[key] = value;
}

// ---------------------------------------------------------------------------------------------
// JSON

function parseJson(args: ParseAwsResponseArgs, text: string, isErrorStatus: boolean): ParsedAwsResponse {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return unparseable(args);
  }
  if (!isRecord(body)) return { elements: null };
  if (!isErrorStatus) {
    return { elements: redactedElements(args, body) };
  }
  const result: ParsedAwsResponse = { elements: null };
  const rawCode = stringAt(body, "code") ?? stringAt(body, "Code") ?? stringAt(body, "__type");
  withOptional(result, "errorCode", rawCode === undefined ? undefined : sanitizeErrorCode(rawCode));
  withOptional(
    result,
    "errorMessage",
    stringAt(body, "message") ?? stringAt(body, "Message") ?? stringAt(body, "errorMessage"),
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// XML

function parseXml(args: ParseAwsResponseArgs, text: string, isErrorStatus: boolean): ParsedAwsResponse {
  let document: unknown;
  try {
    document = xmlParser.parse(text, true);
  } catch {
    return isErrorStatus ? scrapeXmlError(text) : unparseable(args);
  }
  if (!isRecord(document)) return { elements: null };
  const rootName = Object.keys(document)[0];
  if (rootName === undefined) return { elements: null };
  const root = document[rootName];

  const error = xmlError(rootName, root);
  if (error !== undefined) return error;
  if (isErrorStatus) return { elements: null };

  if (args.protocol === "restXml" && S3_PAYLOAD_OPERATIONS.has(args.operation)) {
    return { elements: null };
  }
  if (!isRecord(root)) {
    // e.g. S3 `<LocationConstraint>eu-west-1</LocationConstraint>`; an empty query `<XResponse/>`.
    if (args.protocol === "awsQuery" || args.protocol === "ec2Query") return { elements: null };
    return { elements: redactedElements(args, { [rootName]: root }) };
  }

  const result: ParsedAwsResponse = { elements: null };
  switch (args.protocol) {
    case "awsQuery": {
      withOptional(result, "requestId", stringAt(root, "ResponseMetadata", "RequestId"));
      const resultName = Object.keys(root).find((name) => name.endsWith("Result"));
      const content = resultName === undefined ? undefined : root[resultName];
      result.elements = isRecord(content) ? redactedElements(args, content) : null;
      return result;
    }
    case "ec2Query": {
      withOptional(result, "requestId", stringAt(root, "requestId") ?? stringAt(root, "RequestId"));
      const rest = Object.fromEntries(Object.entries(root).filter(([name]) => name !== "requestId"));
      result.elements = Object.keys(rest).length === 0 ? null : redactedElements(args, rest);
      return result;
    }
    default:
      result.elements = redactedElements(args, root);
      return result;
  }
}

/** Recognises S3 `<Error>`, query `<ErrorResponse><Error>` and EC2 `<Response><Errors><Error>`. */
function xmlError(rootName: string, root: unknown): ParsedAwsResponse | undefined {
  let error: unknown;
  let requestId: string | undefined;
  if (rootName === "Error") {
    error = root;
    requestId = stringAt(root, "RequestId");
  } else if (rootName === "ErrorResponse") {
    error = isRecord(root) ? firstOf(root.Error) : undefined;
    requestId = stringAt(root, "RequestId") ?? stringAt(root, "RequestID") ?? stringAt(error, "RequestId");
  } else if (rootName === "Response" && isRecord(root) && root.Errors !== undefined) {
    error = isRecord(root.Errors) ? firstOf(root.Errors.Error) : undefined;
    requestId = stringAt(root, "RequestID") ?? stringAt(root, "RequestId");
  } else {
    return undefined;
  }
  const result: ParsedAwsResponse = { elements: null };
  withOptional(result, "errorCode", stringAt(error, "Code"));
  withOptional(result, "errorMessage", stringAt(error, "Message"));
  withOptional(result, "requestId", requestId);
  return result;
}

function firstOf(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

/** Truncated or otherwise invalid XML error bodies: pick out what we can. */
function scrapeXmlError(text: string): ParsedAwsResponse {
  const result: ParsedAwsResponse = { elements: null };
  withOptional(result, "errorCode", scrape(text, "Code"));
  withOptional(result, "errorMessage", scrape(text, "Message"));
  withOptional(result, "requestId", scrape(text, "RequestId") ?? scrape(text, "RequestID"));
  return result;
}

function scrape(text: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([^<]{1,1024})</${tag}>`).exec(text);
  return match?.[1] === undefined ? undefined : decodeXmlEntities(match[1]);
}

function decodeXmlEntities(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp);/g, (_all, name: string) => {
    switch (name) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default:
        return "&";
    }
  });
}
