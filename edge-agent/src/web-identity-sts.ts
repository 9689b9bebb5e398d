/**
 * STS `AssumeRoleWithWebIdentity` served by the edge: the one unsigned AWS call it accepts. The
 * SDKs' web-identity credential providers (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, with
 * `AWS_ENDPOINT_URL` at the edge) send it as an unsigned awsQuery POST (the GET query form is
 * accepted too). The token is exchanged at the control plane (`WebIdentityService`) and the
 * answer is STS's own XML, so the SDKs parse credentials and errors unchanged.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "@tollgate/proto";
import { assumedRoleArn, type ControlPlaneClient, PLACEHOLDER_ACCOUNT_ID, parseWorkloadRoleArn } from "@tollgate/sdk";
import { buildAuditEvent, type CallRecord, type TlsInfo } from "./audit-record.js";
import { type AuditCallRecorder, AuditUnavailableError, type CallHandle } from "./audit-recorder.js";
import type { AwsResource, Classification } from "./aws-classifier.js";
import { renderAwsError } from "./aws-errors.js";
import { type CallSpan, endCallSpan } from "./call-span.js";
import type { EdgeConfigSnapshot } from "./edge-config.js";
import type { Logger } from "./logger.js";

/** The STS action served. */
export const WEB_IDENTITY_ACTION = "AssumeRoleWithWebIdentity";
/** STS API version in responses. */
const STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/";
/** Largest form body read for the call (STS caps the token at 20000 characters). */
export const MAX_WEB_IDENTITY_BODY_BYTES = 64 * 1024;

/** The call's parameters. */
export interface WebIdentityParams {
  roleArn: string;
  roleSessionName: string;
  /** The JWT: never logged, stored or recorded. */
  webIdentityToken: string;
  /** 0 when not given; -1 when not an integer. */
  durationSec: number;
  version: string;
}

/** What the control plane answered (see ExchangeWebIdentityResponse). */
export interface WebIdentityOutcome {
  /** "" when a credential was issued. */
  errorCode: string;
  errorMessage: string;
  subject: string;
  principal: string;
  connection: string;
  provider: string;
  audience: string;
  groups: readonly string[];
  accountId: string;
  credential?: {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken: string;
    expiration: Date;
    credentialId: string;
  };
}

/** Exchanges the token; rejects only when the control plane could not be asked. */
export type WebIdentityExchanger = (params: WebIdentityParams) => Promise<WebIdentityOutcome>;

/**
 * Could this be the unsigned STS call? No `Authorization` header, no presigned query, path `/`,
 * and either a GET naming the action or a form-encoded POST (whose body names the action).
 */
export function mayBeWebIdentityCall(req: IncomingMessage, rawPath: string, rawQuery: string): boolean {
  if (req.headers.authorization !== undefined) return false;
  if (rawPath !== "/") return false;
  if (/(^|&)X-Amz-(Credential|Signature)=/i.test(rawQuery)) return false;
  if (req.method === "GET") return new URLSearchParams(rawQuery).get("Action") === WEB_IDENTITY_ACTION;
  if (req.method !== "POST") return false;
  const contentType = String(req.headers["content-type"] ?? "").toLowerCase();
  return contentType.startsWith("application/x-www-form-urlencoded");
}

/** The call's parameters from the query (GET) or the form body (POST); undefined when it is another action. */
export function parseWebIdentityCall(rawQuery: string, body: Buffer | undefined): WebIdentityParams | undefined {
  const form = new URLSearchParams(body !== undefined && body.length > 0 ? body.toString("utf8") : rawQuery);
  if (form.get("Action") !== WEB_IDENTITY_ACTION) return undefined;
  const duration = form.get("DurationSeconds");
  return {
    roleArn: form.get("RoleArn") ?? "",
    roleSessionName: form.get("RoleSessionName") ?? "",
    webIdentityToken: form.get("WebIdentityToken") ?? "",
    durationSec: duration === null ? 0 : /^\d{1,9}$/.test(duration) ? Number(duration) : -1,
    version: form.get("Version") ?? "",
  };
}

/** The classification recorded for the call; request parameters never include the token. */
export function webIdentityClassification(params: WebIdentityParams, region: string): Classification {
  const resources: AwsResource[] = params.roleArn.startsWith("arn:")
    ? [{ arn: params.roleArn, type: "AWS::IAM::Role" }]
    : [];
  return {
    service: "sts",
    eventSource: "sts.amazonaws.com",
    eventName: WEB_IDENTITY_ACTION,
    awsRegion: region,
    readOnly: false,
    protocol: "awsQuery",
    resources,
    requestParameters: {
      roleArn: params.roleArn,
      roleSessionName: params.roleSessionName,
      ...(params.durationSec !== 0 ? { durationSeconds: params.durationSec } : {}),
    },
  };
}

/** STS error status per code. */
const STATUS: Readonly<Record<string, number>> = {
  AccessDenied: 403,
  IDPRejectedClaim: 403,
  InvalidIdentityToken: 400,
  ExpiredTokenException: 400,
  IDPCommunicationError: 400,
  InvalidParameterValue: 400,
  ValidationError: 400,
  InvalidAction: 400,
  ServiceUnavailable: 503,
  InternalFailure: 500,
};

/** An STS error response. */
export function renderWebIdentityError(code: string, message: string, requestId: string) {
  return renderAwsError("awsQuery", { code, message, status: STATUS[code] ?? 400, requestId, service: "sts" });
}

function xml(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** STS `AssumedRoleUser` of the session. */
export interface AssumedRoleUser {
  arn: string;
  assumedRoleId: string;
}

/** The STS success response. */
export function renderWebIdentityResult(
  outcome: WebIdentityOutcome,
  user: AssumedRoleUser,
  requestId: string,
): { status: number; headers: Record<string, string>; body: string } {
  const c = outcome.credential;
  if (c === undefined) throw new TypeError("no credential to render");
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NAMESPACE}">` +
    `<AssumeRoleWithWebIdentityResult>` +
    `<Credentials>` +
    `<AccessKeyId>${xml(c.accessKeyId)}</AccessKeyId>` +
    `<SecretAccessKey>${xml(c.secretAccessKey)}</SecretAccessKey>` +
    `<SessionToken>${xml(c.sessionToken)}</SessionToken>` +
    `<Expiration>${c.expiration.toISOString()}</Expiration>` +
    `</Credentials>` +
    `<SubjectFromWebIdentityToken>${xml(outcome.subject)}</SubjectFromWebIdentityToken>` +
    `<AssumedRoleUser><Arn>${xml(user.arn)}</Arn><AssumedRoleId>${xml(user.assumedRoleId)}</AssumedRoleId></AssumedRoleUser>` +
    `<Provider>${xml(outcome.provider)}</Provider>` +
    `<Audience>${xml(outcome.audience)}</Audience>` +
    `</AssumeRoleWithWebIdentityResult>` +
    `<ResponseMetadata><RequestId>${xml(requestId)}</RequestId></ResponseMetadata>` +
    `</AssumeRoleWithWebIdentityResponse>`;
  return {
    status: 200,
    headers: {
      "content-type": "text/xml",
      "content-length": String(Buffer.byteLength(body)),
      "x-amzn-RequestId": requestId,
    },
    body,
  };
}

/** CloudTrail's `responseElements` of the call: never the secret or the session token. */
export function webIdentityResponseElements(
  outcome: WebIdentityOutcome,
  user: AssumedRoleUser,
): Record<string, unknown> {
  return {
    credentials: {
      accessKeyId: outcome.credential?.accessKeyId ?? "",
      expiration: outcome.credential?.expiration.toISOString() ?? "",
    },
    subjectFromWebIdentityToken: outcome.subject,
    assumedRoleUser: { arn: user.arn, assumedRoleId: user.assumedRoleId },
    provider: outcome.provider,
    audience: outcome.audience,
    ...(outcome.groups.length > 0 ? { groups: [...outcome.groups] } : {}),
  };
}

/** What {@link serveWebIdentityCall} needs from the edge's request handler. */
export interface WebIdentityCallContext {
  req: IncomingMessage;
  res: ServerResponse;
  eventId: string;
  eventTimeMs: number;
  /** performance.now() when the call arrived. */
  startedAt: number;
  bytesIn: number;
  exchanger: WebIdentityExchanger;
  recorder: AuditCallRecorder;
  edgeName: string;
  logger: Logger;
  config: EdgeConfigSnapshot | undefined;
  tls: TlsInfo | undefined;
  /** The call's SERVER span (trace id for the event; ended with the final event). */
  span: CallSpan;
}

/** The `sub` a JWT claims, unverified (only for the audit record of a call that could not be exchanged). */
export function claimedSubject(token: string): string {
  const payload = token.split(".")[1];
  if (payload === undefined || payload.length > 16_384) return "";
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { sub?: unknown };
    return typeof claims.sub === "string" ? claims.sub.slice(0, 256) : "";
  } catch {
    return "";
  }
}

/** Stable id of a Tollgate role (STS `AssumedRoleId` before the colon). */
function roleId(connection: string): string {
  return `TGRO${createHash("sha256").update(connection).digest("hex").slice(0, 17).toUpperCase()}`;
}

/**
 * Serves one `AssumeRoleWithWebIdentity` call: journals its intent (refusing with 503 if it
 * cannot), exchanges the token at the control plane, answers in STS's shape and records exactly
 * one audit event. Never throws.
 */
export async function serveWebIdentityCall(ctx: WebIdentityCallContext, params: WebIdentityParams): Promise<void> {
  const { req, res } = ctx;
  const role = parseWorkloadRoleArn(params.roleArn);
  const connectionConfig = role !== undefined ? ctx.config?.connections.get(role.connection) : undefined;
  const classification = webIdentityClassification(params, connectionConfig?.region || "us-east-1");
  let outcome: WebIdentityOutcome | undefined;
  let errorCode: string | undefined;
  let errorMessage: string | undefined;
  let responseElements: Record<string, unknown> | null = null;
  let status = 0;
  let bytesOut = 0;
  let reason = "";

  const event = (): AuditEvent => {
    const succeeded = outcome !== undefined && outcome.errorCode === "";
    const record: CallRecord = {
      eventId: ctx.eventId,
      eventTimeMs: ctx.eventTimeMs,
      sourceIp: req.socket.remoteAddress ?? "",
      userAgent: String(req.headers["user-agent"] ?? ""),
      classification,
      // The mapped principal; for a refusal, the subject the token claims (unverified).
      principal: outcome?.principal || outcome?.subject || claimedSubject(params.webIdentityToken),
      authenticated: succeeded,
      accessKeyId: "",
      credentialId: outcome?.credential?.credentialId ?? "",
      connection: outcome?.connection || role?.connection || "",
      signingName: "sts",
      accountId: outcome?.accountId || connectionConfig?.accountId || "",
      edge: ctx.edgeName,
      allowed: succeeded,
      reason,
      httpStatus: status,
      durationMs: performance.now() - ctx.startedAt,
      bytesIn: ctx.bytesIn,
      bytesOut,
      requestId: ctx.eventId,
      ...(errorCode !== undefined ? { errorCode } : {}),
      ...(errorMessage !== undefined ? { errorMessage } : {}),
      responseElements,
      traceId: ctx.span.traceId,
      spanId: ctx.span.spanId,
      ...(ctx.tls !== undefined ? { tls: ctx.tls } : {}),
    };
    const e = buildAuditEvent(record);
    if (e.userIdentity !== undefined) e.userIdentity.type = "WebIdentityUser";
    if (e.tollgate !== undefined) e.tollgate.authMethod = "web-identity";
    return e;
  };

  const send = (rendered: { status: number; headers: Record<string, string>; body: string }): void => {
    status = rendered.status;
    bytesOut = Buffer.byteLength(rendered.body);
    if (!res.headersSent) {
      res.writeHead(rendered.status, rendered.headers);
      res.end(req.method === "HEAD" ? undefined : rendered.body);
    }
  };
  const fail = (code: string, message: string, why: string): void => {
    errorCode = code;
    errorMessage = message;
    reason = why;
    send(renderWebIdentityError(code, message, ctx.eventId));
  };

  let handle: CallHandle | undefined;
  try {
    try {
      handle = await ctx.recorder.begin(event());
    } catch (err) {
      if (!(err instanceof AuditUnavailableError)) throw err;
      fail("ServiceUnavailable", "Tollgate cannot record this call right now; refusing it.", "audit-unavailable");
      const refused = event();
      endCallSpan(ctx.span, refused, req.method ?? "");
      void ctx.recorder.record(refused);
      return;
    }
    if (params.version !== "" && params.version !== "2011-06-15") {
      fail(
        "InvalidAction",
        `Could not find operation ${WEB_IDENTITY_ACTION} for version ${params.version}`,
        "bad-version",
      );
    } else if (params.durationSec < 0) {
      fail("ValidationError", "DurationSeconds must be an integer.", "bad-parameter");
    } else {
      try {
        outcome = await ctx.exchanger(params);
      } catch (err) {
        ctx.logger.warn(
          { err: err instanceof Error ? err.message : String(err), eventID: ctx.eventId },
          "web identity exchange failed: control plane unavailable",
        );
        fail(
          "ServiceUnavailable",
          "Tollgate cannot exchange web identity tokens right now; try again.",
          "control-plane-unavailable",
        );
      }
      if (outcome !== undefined && outcome.errorCode !== "") {
        fail(outcome.errorCode, outcome.errorMessage, "web-identity-refused");
      } else if (outcome?.credential !== undefined) {
        const sessionRole = role ?? {
          partition: "aws",
          accountId: PLACEHOLDER_ACCOUNT_ID,
          connection: outcome.connection,
        };
        const user: AssumedRoleUser = {
          arn: assumedRoleArn(sessionRole, params.roleSessionName),
          assumedRoleId: `${roleId(outcome.connection)}:${params.roleSessionName}`,
        };
        reason = "web-identity-exchanged";
        responseElements = webIdentityResponseElements(outcome, user);
        send(renderWebIdentityResult(outcome, user, ctx.eventId));
      } else if (outcome !== undefined) {
        fail("InternalFailure", "The control plane returned no credential.", "internal");
      }
    }
  } catch (err) {
    ctx.logger.error(
      { err: err instanceof Error ? err.message : String(err), eventID: ctx.eventId },
      "web identity call failed",
    );
    fail("InternalFailure", "Tollgate could not serve this call.", "internal");
  }
  const final = event();
  endCallSpan(ctx.span, final, req.method ?? "");
  if (handle !== undefined) void ctx.recorder.complete(handle, final);
  else void ctx.recorder.record(final);
}

/** The exchanger that asks the control plane's `WebIdentityService` with the edge's token. */
export function controlPlaneWebIdentityExchanger(client: ControlPlaneClient, edgeName: string): WebIdentityExchanger {
  return async (params) => {
    const r = await client.webIdentity.exchangeWebIdentity({
      roleArn: params.roleArn,
      roleSessionName: params.roleSessionName,
      webIdentityToken: params.webIdentityToken,
      durationSeconds: BigInt(params.durationSec),
      edgeName,
    });
    const c = r.credential;
    return {
      errorCode: r.errorCode,
      errorMessage: r.errorMessage,
      subject: r.subject,
      principal: r.principal,
      connection: r.connection,
      provider: r.provider,
      audience: r.audience,
      groups: r.groups,
      accountId: r.accountId,
      ...(c !== undefined && r.errorCode === ""
        ? {
            credential: {
              accessKeyId: c.accessKeyId,
              secretAccessKey: c.secretAccessKey,
              sessionToken: c.sessionToken,
              expiration: c.expireTime === undefined ? new Date(0) : timestampDate(c.expireTime),
              credentialId: c.credentialId,
            },
          }
        : {}),
    };
  };
}
