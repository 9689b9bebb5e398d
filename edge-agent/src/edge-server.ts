import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as http from "node:http";
import * as https from "node:https";
import { pipeline } from "node:stream";
import { type GatewayCredentialClaims, openSessionToken, TollgateError } from "@tollgate/sdk";
import { decideAccess } from "./access-policy.js";
import type { AuditPublisher } from "./audit-publisher.js";
import { buildAuditEvent, type CallRecord } from "./audit-record.js";
import { type Classification, classifyRequest } from "./aws-classifier.js";
import { type EdgeErrorKind, edgeError } from "./aws-errors.js";
import { parseAwsResponse, upstreamRequestId } from "./aws-response-parser.js";
import type { EdgeConfigSnapshot } from "./edge-config.js";
import { type Logger, silentLogger } from "./logger.js";
import { PayloadHashGuard } from "./payload-hash-guard.js";
import {
  parseRawQuery,
  parseSigV4Authorization,
  SigningKeyCache,
  type SigV4Authorization,
  SigV4Problem,
  verifySigV4,
} from "./sigv4-verifier.js";
import { resolveUpstreamTarget } from "./upstream-endpoint.js";
import { createUpstreamSigner } from "./upstream-signer.js";

/** Options for {@link createEdgeRequestHandler}. */
export interface EdgeServerOptions {
  /** Current configuration (connections, credential keys, audit settings). */
  config: () => EdgeConfigSnapshot;
  /**
   * Asks for fresher configuration when a credential names an unknown connection or key;
   * resolves when done. Default: no-op.
   */
  refreshConfig?: () => Promise<void>;
  publisher: AuditPublisher;
  /** Name recorded in every event's `tollgate.edge`. */
  edgeName: string;
  logger?: Logger;
  /** Largest non-S3 request body accepted (they are buffered to classify and hash). Default 16 MiB. */
  maxBufferedBodyBytes?: number;
  /** Bytes of a response kept for `responseElements` and error parsing. Default 64 KiB. */
  responseCaptureBytes?: number;
  /** Upstream request timeout in milliseconds. Default 120000. */
  upstreamTimeoutMs?: number;
}

type ResolvedOptions = Required<EdgeServerOptions>;

function resolveEdgeServerOptions(o: EdgeServerOptions): ResolvedOptions {
  return {
    logger: silentLogger,
    maxBufferedBodyBytes: 16 * 1024 * 1024,
    responseCaptureBytes: 64 * 1024,
    upstreamTimeoutMs: 120_000,
    refreshConfig: () => Promise.resolve(),
    ...o,
  };
}

/** Request headers never forwarded upstream: auth is replaced, hop-by-hop ones are per-connection. */
const DROP_REQUEST_HEADERS = new Set([
  "authorization",
  "x-amz-security-token",
  "x-amz-date",
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "upgrade",
  "expect",
  "transfer-encoding",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-real-ip",
]);

const DROP_RESPONSE_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"]);

/** Payload modes S3 clients declare in `x-amz-content-sha256`. */
const UNSIGNED_PAYLOADS = new Set(["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]);
const HEX_SHA256 = /^[0-9a-f]{64}$/;

class EdgeRefusal extends Error {
  constructor(
    readonly kind: EdgeErrorKind,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners("data");
        req.resume();
        reject(new EdgeRefusal("request-too-large", "body-too-large", `Request body exceeds ${maxBytes} bytes.`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Per-call state, filled in as the call moves along the path. */
interface Call {
  eventId: string;
  startedAt: number;
  eventTimeMs: number;
  rawPath: string;
  rawQuery: string;
  auth?: SigV4Authorization;
  claims?: GatewayCredentialClaims;
  authenticated: boolean;
  classification?: Classification;
  body?: Buffer;
  bytesIn: number;
  bytesOut: number;
  requestId: string;
  httpStatus: number;
  errorCode?: string;
  errorMessage?: string;
  responseElements: Record<string, unknown> | null;
  allowed: boolean;
  reason: string;
}

/**
 * Creates the edge's request handler: verify → classify → decide → forward → record.
 * Every call, allowed or refused, ends in exactly one published audit event.
 */
export function createEdgeRequestHandler(
  options: EdgeServerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const o = resolveEdgeServerOptions(options);
  const signingKeys = new SigningKeyCache();
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 256 }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 256 }),
  };

  function classify(req: IncomingMessage, call: Call, config: EdgeConfigSnapshot | undefined): Classification {
    const connection = call.claims !== undefined ? config?.connections.get(call.claims.connection) : undefined;
    return classifyRequest({
      method: req.method ?? "GET",
      rawPath: call.rawPath,
      query: parseRawQuery(call.rawQuery),
      headers: req.headers,
      signingName: call.auth?.service ?? "",
      region: call.auth?.region ?? connection?.region ?? "us-east-1",
      accountId: connection?.accountId ?? "",
      ...(call.body !== undefined ? { body: call.body } : {}),
    });
  }

  function finish(call: Call, req: IncomingMessage, config: EdgeConfigSnapshot | undefined): void {
    const classification = call.classification ?? classify(req, call, config);
    const connection = call.claims !== undefined ? config?.connections.get(call.claims.connection) : undefined;
    const record: CallRecord = {
      eventId: call.eventId,
      eventTimeMs: call.eventTimeMs,
      sourceIp: req.socket.remoteAddress ?? "",
      userAgent: header(req, "user-agent") ?? "",
      classification,
      principal: call.claims?.principal ?? "",
      authenticated: call.authenticated,
      accessKeyId: call.auth?.accessKeyId ?? "",
      credentialId: call.claims?.credentialId ?? "",
      connection: call.claims?.connection ?? "",
      signingName: call.auth?.service ?? "",
      accountId: connection?.accountId ?? "",
      edge: o.edgeName,
      allowed: call.allowed,
      reason: call.reason,
      httpStatus: call.httpStatus,
      durationMs: performance.now() - call.startedAt,
      bytesIn: call.bytesIn,
      bytesOut: call.bytesOut,
      requestId: call.requestId,
      ...(call.errorCode !== undefined ? { errorCode: call.errorCode } : {}),
      ...(call.errorMessage !== undefined ? { errorMessage: call.errorMessage } : {}),
      responseElements: call.responseElements,
      traceId: "",
    };
    const event = buildAuditEvent(record);
    const prefix = config?.auditSubjectPrefix ?? "";
    if (prefix === "") {
      o.logger.error({ eventID: call.eventId }, "no audit subject prefix configured; event dropped");
      return;
    }
    void o.publisher.publish(prefix, event);
  }

  function refuse(
    req: IncomingMessage,
    res: ServerResponse,
    call: Call,
    config: EdgeConfigSnapshot | undefined,
    err: EdgeRefusal,
  ): void {
    call.classification ??= classify(req, call, config);
    const c = call.classification;
    const rendered = edgeError(err.kind, c.protocol, c.service, err.message, call.eventId);
    call.allowed = false;
    call.reason = err.reason;
    call.httpStatus = rendered.status;
    call.errorCode = codeOf(rendered.body, rendered.headers) ?? err.kind;
    call.errorMessage = err.message;
    if (!res.headersSent) {
      res.writeHead(rendered.status, rendered.headers);
      res.end(req.method === "HEAD" ? undefined : rendered.body);
    } else {
      res.destroy();
    }
    // Drain what the client still sends so the socket can be reused.
    if (!req.readableEnded) req.resume();
    finish(call, req, config);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const call: Call = {
      eventId: randomUUID(),
      startedAt: performance.now(),
      eventTimeMs: Date.now(),
      rawPath: q === -1 ? url : url.slice(0, q),
      rawQuery: q === -1 ? "" : url.slice(q + 1),
      authenticated: false,
      bytesIn: 0,
      bytesOut: 0,
      requestId: "",
      httpStatus: 0,
      responseElements: null,
      allowed: false,
      reason: "",
    };
    let config: EdgeConfigSnapshot | undefined;
    try {
      config = o.config();
    } catch {
      config = undefined;
    }
    try {
      // 1. Verify: who is calling?
      let authProblem: SigV4Problem | undefined;
      try {
        call.auth = parseSigV4Authorization(header(req, "authorization"));
      } catch (err) {
        if (!(err instanceof SigV4Problem)) throw err;
        authProblem = err;
      }
      if (call.auth !== undefined) {
        const token = header(req, "x-amz-security-token");
        if (token !== undefined && config !== undefined) {
          call.claims = openToken(token, config);
          // A key or connection this edge hasn't seen yet: fetch fresher config once.
          if (
            (call.claims === undefined || !config.connections.has(call.claims.connection)) &&
            token.startsWith("tg1.")
          ) {
            await o.refreshConfig();
            config = o.config();
            call.claims = openToken(token, config);
          }
        }
      }
      if (call.auth?.service !== "s3") {
        call.body = await readBody(req, o.maxBufferedBodyBytes);
        call.bytesIn = call.body.length;
      }
      // 2. Classify: which service, operation, resources?
      call.classification = classify(req, call, config);

      if (config === undefined) {
        throw new EdgeRefusal("unavailable", "no-config", "Tollgate edge has no configuration yet; try again.");
      }
      if (authProblem !== undefined || call.auth === undefined) {
        const p = authProblem ?? new SigV4Problem("missing", "Request is missing Authentication Token");
        throw new EdgeRefusal(p.code === "missing" ? "missing-auth" : "malformed-auth", `auth-${p.code}`, p.message);
      }
      const claims = call.claims;
      if (claims === undefined || claims.accessKeyId !== call.auth.accessKeyId) {
        call.claims = undefined;
        throw new EdgeRefusal(
          "unknown-access-key",
          "unknown-access-key",
          call.auth.service === "s3"
            ? "The AWS Access Key Id you provided does not exist in our records."
            : "The security token included in the request is invalid.",
        );
      }
      if (claims.expiresAtSec * 1000 <= Date.now()) {
        throw new EdgeRefusal(
          "expired-token",
          "expired-token",
          "The security token included in the request is expired",
        );
      }
      let payloadHash: string;
      const declared = header(req, "x-amz-content-sha256");
      if (call.body !== undefined) {
        payloadHash = createHash("sha256").update(call.body).digest("hex");
        if (declared !== undefined && declared !== payloadHash && !UNSIGNED_PAYLOADS.has(declared)) {
          throw new EdgeRefusal(
            "signature-mismatch",
            "payload-hash-mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
          );
        }
        if (declared !== undefined) payloadHash = declared;
      } else {
        if (declared === undefined) {
          throw new EdgeRefusal(
            "malformed-auth",
            "missing-content-sha256",
            "Missing required header for this request: x-amz-content-sha256",
          );
        }
        if (!UNSIGNED_PAYLOADS.has(declared) && !HEX_SHA256.test(declared)) {
          throw new EdgeRefusal(
            "not-implemented",
            "payload-mode-not-implemented",
            `Payload mode ${declared.slice(0, 64)} is not supported by this Tollgate edge yet.`,
          );
        }
        payloadHash = declared;
      }
      try {
        verifySigV4(
          call.auth,
          {
            method: req.method ?? "GET",
            rawPath: call.rawPath,
            rawQuery: call.rawQuery,
            rawHeaders: req.rawHeaders,
            payloadHash,
            amzDate: header(req, "x-amz-date") ?? "",
          },
          claims.secretAccessKey,
          signingKeys,
          { maxSkewMs: (call.auth.service === "s3" ? 15 : 5) * 60_000 },
        );
      } catch (err) {
        if (!(err instanceof SigV4Problem)) throw err;
        throw new EdgeRefusal(
          err.code === "skewed" ? "clock-skew" : err.code === "malformed" ? "malformed-auth" : "signature-mismatch",
          `signature-${err.code}`,
          err.message,
        );
      }
      call.authenticated = true;

      // 3. Decide.
      const decision = decideAccess({
        claims,
        classification: call.classification,
        config,
        auditHealthy: o.publisher.healthy,
      });
      if (!decision.allow) throw new EdgeRefusal(decision.kind, decision.reason, decision.message);
      call.allowed = true;
      call.reason = "allowed";

      // 4. Forward (re-signed with the connection's upstream credentials) and stream back.
      await forward(req, res, call, config, claims);
    } catch (err) {
      if (err instanceof EdgeRefusal) {
        refuse(req, res, call, config, err);
        return;
      }
      o.logger.error(
        { err: err instanceof Error ? err.message : String(err), eventID: call.eventId },
        "edge call failed",
      );
      refuse(
        req,
        res,
        call,
        config,
        new EdgeRefusal("internal", "internal-error", "We encountered an internal error. Please try again."),
      );
    }
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    call: Call,
    config: EdgeConfigSnapshot,
    claims: GatewayCredentialClaims,
  ): Promise<void> {
    const auth = call.auth as SigV4Authorization;
    const connection = config.connections.get(claims.connection);
    if (connection === undefined) {
      return Promise.reject(new EdgeRefusal("access-denied", "unknown-connection", "Unknown connection."));
    }
    const target = resolveUpstreamTarget(connection.upstreamEndpoint, auth.service, auth.region);
    const headers: Record<string, string> = {};
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = (req.rawHeaders[i] as string).toLowerCase();
      if (DROP_REQUEST_HEADERS.has(name) || name.startsWith("proxy-")) continue;
      const value = req.rawHeaders[i + 1] as string;
      headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
    }
    headers.host = target.host;
    if (call.body !== undefined) {
      headers["content-length"] = String(call.body.length);
    }
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of parseRawQuery(call.rawQuery)) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const signer = createUpstreamSigner(connection.credentials, auth.service, target.signingRegion);
    return signer
      .sign(
        {
          method: req.method ?? "GET",
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          path: call.rawPath,
          query,
          headers,
          ...(call.body !== undefined ? { body: call.body } : {}),
        },
        { signingDate: new Date() },
      )
      .then((signed) => {
        const outHeaders: Record<string, string> = signed.headers;
        return new Promise<void>((resolve) => {
          const upstreamReq = (target.protocol === "http:" ? http : https).request({
            method: req.method,
            host: target.hostname,
            port: target.port,
            path: call.rawQuery === "" ? call.rawPath : `${call.rawPath}?${call.rawQuery}`,
            headers: outHeaders,
            agent: agents[target.protocol],
            timeout: o.upstreamTimeoutMs,
          });
          let settled = false;
          const done = (): void => {
            if (settled) return;
            settled = true;
            finish(call, req, config);
            resolve();
          };
          const failUpstream = (code: string, message: string, status: number): void => {
            if (settled) return;
            call.errorCode ??= code;
            call.errorMessage ??= message;
            if (!res.headersSent) {
              const c = call.classification as Classification;
              const rendered = edgeError(
                status === 400 ? "signature-mismatch" : "unavailable",
                c.protocol,
                c.service,
                message,
                call.eventId,
              );
              call.httpStatus = rendered.status;
              res.writeHead(rendered.status, rendered.headers);
              res.end(rendered.body);
            } else {
              res.destroy();
            }
            done();
          };
          upstreamReq.on("timeout", () => upstreamReq.destroy(new Error("upstream timeout")));
          upstreamReq.on("error", (err) => {
            if (call.errorCode === "XAmzContentSHA256Mismatch") {
              failUpstream("XAmzContentSHA256Mismatch", call.errorMessage ?? "", 400);
            } else {
              failUpstream("UpstreamUnavailable", `Upstream AWS endpoint failed: ${err.message}`, 503);
            }
          });
          upstreamReq.on("response", (up) => {
            call.httpStatus = up.statusCode ?? 502;
            call.requestId = upstreamRequestId(up.headers) ?? "";
            const outRaw: string[] = [];
            for (let i = 0; i + 1 < up.rawHeaders.length; i += 2) {
              const name = up.rawHeaders[i] as string;
              if (DROP_RESPONSE_HEADERS.has(name.toLowerCase())) continue;
              outRaw.push(name, up.rawHeaders[i + 1] as string);
            }
            res.writeHead(call.httpStatus, up.statusMessage, outRaw);
            const contentType = String(up.headers["content-type"] ?? "");
            const capture = /xml|json/i.test(contentType) || call.httpStatus >= 300;
            const captured: Buffer[] = [];
            let capturedBytes = 0;
            let truncated = false;
            up.on("data", (chunk: Buffer) => {
              call.bytesOut += chunk.length;
              if (capture && !truncated) {
                if (capturedBytes + chunk.length <= o.responseCaptureBytes) {
                  captured.push(chunk);
                  capturedBytes += chunk.length;
                } else truncated = true;
              }
            });
            pipeline(up, res, (err) => {
              const c = call.classification as Classification;
              const parsed = parseAwsResponse({
                protocol: c.protocol,
                status: call.httpStatus,
                headers: up.headers,
                body: Buffer.concat(captured),
                service: c.service,
                operation: c.eventName,
                truncated,
              });
              if (call.requestId === "" && parsed.requestId !== undefined) call.requestId = parsed.requestId;
              if (parsed.errorCode !== undefined) {
                call.errorCode = parsed.errorCode;
                call.errorMessage = parsed.errorMessage ?? "";
              }
              if (!c.readOnly && call.httpStatus < 300) call.responseElements = parsed.elements;
              if (err && call.errorCode === undefined) {
                call.errorCode = "ClientDisconnected";
                call.errorMessage = "The client closed the connection before the response was complete.";
              }
              done();
            });
          });

          if (call.body !== undefined) {
            upstreamReq.end(call.body);
            return;
          }
          // S3: stream the body; a signed hash is checked before the last chunk is released.
          const declared = header(req, "x-amz-content-sha256") ?? "";
          if (HEX_SHA256.test(declared)) {
            const guard = new PayloadHashGuard(declared);
            pipeline(req, guard, upstreamReq, (err) => {
              call.bytesIn = guard.bytes;
              if (
                err !== undefined &&
                err !== null &&
                (err as { code?: string }).code === "XAmzContentSHA256Mismatch"
              ) {
                call.errorCode = "XAmzContentSHA256Mismatch";
                call.errorMessage = err.message;
                call.allowed = false;
                call.reason = "payload-hash-mismatch";
                upstreamReq.destroy(err);
              }
            });
          } else {
            req.on("data", (chunk: Buffer) => {
              call.bytesIn += chunk.length;
            });
            pipeline(req, upstreamReq, () => {});
          }
        });
      });
  }

  return (req, res) => {
    void handle(req, res);
  };
}

function openToken(token: string, config: EdgeConfigSnapshot): GatewayCredentialClaims | undefined {
  try {
    return openSessionToken(token, config.credentialKeys);
  } catch (err) {
    if (err instanceof TollgateError) return undefined;
    throw err;
  }
}

function codeOf(body: string, headers: Record<string, string>): string | undefined {
  const errorType = headers["x-amzn-ErrorType"] ?? headers["x-amzn-errortype"];
  if (errorType !== undefined) return errorType.split(":")[0];
  const m = /<Code>([^<]+)<\/Code>/.exec(body);
  return m?.[1];
}

/** Creates the edge's HTTP server (not listening; call `listen()`). */
export function createEdgeServer(options: EdgeServerOptions): http.Server {
  const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, createEdgeRequestHandler(options));
  return server;
}
