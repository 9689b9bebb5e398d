import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as http from "node:http";
import * as https from "node:https";
import type { TLSSocket } from "node:tls";
import { type Tracer, trace } from "@opentelemetry/api";
import type { AuditEvent } from "@tollgate/proto";
import { type GatewayCredentialClaims, newEventId, openSessionToken, TollgateError } from "@tollgate/sdk";
import { decideAccess } from "./access-policy.js";
import {
  buildAuditEvent,
  type CallRecord,
  type CappedElements,
  capElements,
  MAX_RECORDED_ELEMENTS_BYTES,
  type TlsInfo,
} from "./audit-record.js";
import { type AuditCallRecorder, AuditUnavailableError, type CallHandle } from "./audit-recorder.js";
import { type Classification, classifyRequest } from "./aws-classifier.js";
import { type EdgeErrorKind, edgeError, renderAwsError } from "./aws-errors.js";
import { parseAwsResponse, upstreamRequestId } from "./aws-response-parser.js";
import { type CallSpan, EDGE_TRACER_NAME, endCallSpan, startCallSpan } from "./call-span.js";
import type { EdgeConfigSnapshot } from "./edge-config.js";
import { type Logger, silentLogger } from "./logger.js";
import { type BodyDigest, DigestPool, digestBody } from "./offthread-digest.js";
import type { PayloadDigestValue } from "./payload-digest.js";
import { PayloadHashGuard, PayloadHashMismatch } from "./payload-hash-guard.js";
import { relay } from "./relay.js";
import {
  type ChunkSigningContext,
  EMPTY_SHA256_HEX,
  SIGNED_CHUNK_PAYLOADS,
  SignedChunkError,
  SignedChunkResigner,
} from "./signed-chunk-resigner.js";
import {
  credentialScope,
  type LegacySignatureClaim,
  PRESIGN_QUERY_PARAMS,
  parseRawQuery,
  parseSigV4Authorization,
  parseSigV4Query,
  SigningKeyCache,
  type SigV4Authorization,
  SigV4Problem,
  verifySigV4,
} from "./sigv4-verifier.js";
import { type ResolvedUpstream, UpstreamCredentialResolver, UpstreamCredentialsError } from "./upstream-credentials.js";
import { resolveUpstreamTarget, upstreamRequestPath } from "./upstream-endpoint.js";
import { UpstreamSigner } from "./upstream-signer.js";
import {
  MAX_WEB_IDENTITY_BODY_BYTES,
  mayBeWebIdentityCall,
  parseWebIdentityCall,
  serveWebIdentityCall,
  type WebIdentityExchanger,
} from "./web-identity-sts.js";

/** Options for {@link createEdgeRequestHandler}. */
export interface EdgeServerOptions {
  /** Current configuration (connections, credential keys, audit settings). */
  config: () => EdgeConfigSnapshot;
  /**
   * Asks for fresher configuration when a credential names an unknown connection or key;
   * resolves when done. Default: no-op.
   */
  refreshConfig?: () => Promise<void>;
  /** Durable audit: journals each call before it is forwarded and ships it to JetStream. */
  recorder: AuditCallRecorder;
  /** Name recorded in every event's `tollgate.edge`. */
  edgeName: string;
  logger?: Logger;
  /** Largest non-S3 request body accepted (they are buffered to classify and hash). Default 16 MiB. */
  maxBufferedBodyBytes?: number;
  /** Bytes of a response kept for `responseElements` and error parsing. Default 64 KiB. */
  responseCaptureBytes?: number;
  /** Upstream request timeout in milliseconds. Default 120000. */
  upstreamTimeoutMs?: number;
  /** Largest chunk of a signed aws-chunked body (one chunk is held while its signature is checked). Default 16 MiB. */
  maxChunkBytes?: number;
  /**
   * Record the size and SHA-256 of S3 object bodies (GetObject, PutObject, UploadPart) as
   * `tollgate.requestPayload` / `responsePayload`. Default true. Hashing costs about 0.4-0.7
   * CPU-seconds per GiB (bench/README.md). False leaves them out, except for a body signed with
   * its own SHA-256, whose verified hash is recorded at no extra cost. Signed bodies and signed
   * chunks are verified either way.
   */
  objectDigests?: boolean;
  /**
   * Exchanges web identity tokens of unsigned STS `AssumeRoleWithWebIdentity` calls (at the
   * control plane). Without it such calls are refused like any unsigned request.
   */
  webIdentity?: WebIdentityExchanger;
  /** Resolves the credentials forwarded calls are signed with. Default: static keys only (no edge credentials). */
  upstreamCredentials?: Pick<UpstreamCredentialResolver, "resolve">;
  /**
   * Tracer for each call's SERVER span. Default: `@opentelemetry/api`'s global tracer provider
   * (a no-op unless `main.ts` registered an SDK).
   */
  tracer?: Tracer;
}

type ResolvedOptions = Required<Omit<EdgeServerOptions, "webIdentity">> & Pick<EdgeServerOptions, "webIdentity">;

function resolveEdgeServerOptions(o: EdgeServerOptions): ResolvedOptions {
  return {
    logger: silentLogger,
    maxBufferedBodyBytes: 16 * 1024 * 1024,
    responseCaptureBytes: 64 * 1024,
    upstreamTimeoutMs: 120_000,
    maxChunkBytes: 16 * 1024 * 1024,
    objectDigests: true,
    refreshConfig: () => Promise.resolve(),
    tracer: trace.getTracer(EDGE_TRACER_NAME),
    ...o,
    upstreamCredentials: o.upstreamCredentials ?? new UpstreamCredentialResolver({ logger: o.logger ?? silentLogger }),
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

const REFUSAL_OF_PROBLEM: Readonly<Record<SigV4Problem["code"], EdgeErrorKind>> = {
  missing: "missing-auth",
  malformed: "malformed-auth",
  skewed: "clock-skew",
  // A presigned URL past X-Amz-Expires: S3 answers AccessDenied "Request has expired".
  expired: "access-denied",
  mismatch: "signature-mismatch",
  unsupported: "unsupported-auth",
};

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
  /** OpenTelemetry SERVER span; its trace id goes into every event of the call. */
  span: CallSpan;
  /** Set once the intent is journaled; the final event completes it. */
  handle?: CallHandle;
  startedAt: number;
  eventTimeMs: number;
  rawPath: string;
  rawQuery: string;
  /** Client sent `Expect: 100-continue`: answer `100 Continue` only once the call is authenticated. */
  expectsContinue: boolean;
  auth?: SigV4Authorization;
  /** What a refused SigV2 signature claims (classifies the call as S3, names the claimed principal). */
  legacyAuth?: LegacySignatureClaim;
  /** Date of the verified signature (seeds chunk signatures). */
  amzDate?: string;
  claims?: GatewayCredentialClaims;
  authenticated: boolean;
  classification?: Classification;
  /** The classification's requestParameters as recorded (capped), kept from the intent for the final event. */
  cappedRequest?: { of: Classification; capped: CappedElements };
  body?: Buffer;
  /** Hex SHA-256 of `body` (what upstream signing covers when no x-amz-content-sha256 is sent). */
  bodySha256?: string;
  bytesIn: number;
  bytesOut: number;
  requestId: string;
  httpStatus: number;
  errorCode?: string;
  errorMessage?: string;
  responseElements: Record<string, unknown> | null;
  allowed: boolean;
  reason: string;
  /** Object body sent (PutObject, UploadPart): size and SHA-256, never the bytes. */
  requestPayload?: PayloadDigestValue;
  /** Object body returned (GetObject). */
  responsePayload?: PayloadDigestValue;
  /** Upstream credentials and identity, once resolved (before the intent is journaled). */
  upstream?: ResolvedUpstream;
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
  const upstreamSigner = new UpstreamSigner(upstreamSigningKeys);
  // Object-body SHA-256s of large transfers run on a worker thread (offthread-digest.ts).
  const digestPool = new DigestPool({ logger: o.logger });
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
      signingName: call.auth?.service ?? call.legacyAuth?.service ?? "",
      region: call.auth?.region ?? connection?.region ?? "us-east-1",
      accountId: connection?.accountId ?? "",
      ...(call.body !== undefined ? { body: call.body } : {}),
    });
  }

  function buildEvent(call: Call, req: IncomingMessage, config: EdgeConfigSnapshot | undefined): AuditEvent {
    const classification = call.classification ?? classify(req, call, config);
    const connection = call.claims !== undefined ? config?.connections.get(call.claims.connection) : undefined;
    if (call.cappedRequest?.of !== classification) {
      call.cappedRequest = {
        of: classification,
        capped: capElements(classification.requestParameters, MAX_RECORDED_ELEMENTS_BYTES),
      };
    }
    const record: CallRecord = {
      eventId: call.eventId,
      eventTimeMs: call.eventTimeMs,
      sourceIp: req.socket.remoteAddress ?? "",
      userAgent: header(req, "user-agent") ?? "",
      classification,
      principal: call.claims?.principal ?? "",
      authenticated: call.authenticated,
      accessKeyId: call.auth?.accessKeyId ?? call.legacyAuth?.accessKeyId ?? "",
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
      responseElements: call.responseElements,
      traceId: call.span.traceId,
      spanId: call.span.spanId,
      cappedRequestParameters: call.cappedRequest.capped,
    };
    // Optional members set one by one (no spread of a temporary object per member).
    if (call.errorCode !== undefined) record.errorCode = call.errorCode;
    if (call.errorMessage !== undefined) record.errorMessage = call.errorMessage;
    if (call.auth !== undefined) record.authForm = call.auth.form;
    if (call.requestPayload !== undefined) record.requestPayload = call.requestPayload;
    if (call.responsePayload !== undefined) record.responsePayload = call.responsePayload;
    if (call.upstream !== undefined) record.upstreamIdentity = call.upstream.identity;
    const tls = tlsInfo(req);
    if (tls !== undefined) record.tls = tls;
    return buildAuditEvent(record);
  }

  /** Records the call's final event: the completion of its journaled intent, or a refusal. */
  function finish(call: Call, req: IncomingMessage, config: EdgeConfigSnapshot | undefined): void {
    const event = buildEvent(call, req, config);
    endCallSpan(call.span, event, req.method ?? "");
    if (call.handle !== undefined) void o.recorder.complete(call.handle, event);
    else void o.recorder.record(event);
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
    call.errorCode = rendered.code;
    call.errorMessage = err.message;
    if (!res.headersSent) {
      // A client waiting for 100 Continue never sends its body: don't read a next request from it.
      if (call.expectsContinue && !req.readableEnded) res.shouldKeepAlive = false;
      res.writeHead(rendered.status, rendered.headers);
      res.end(req.method === "HEAD" ? undefined : rendered.body);
    } else {
      res.destroy();
    }
    // Drain what the client still sends so the socket can be reused.
    if (!req.readableEnded && !call.expectsContinue) req.resume();
    finish(call, req, config);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const eventTimeMs = Date.now();
    const call: Call = {
      // Time-ordered (UUID v7): indexed events land on the last index page, see sdk event-id.ts.
      eventId: newEventId(eventTimeMs),
      span: startCallSpan(o.tracer, req.headers, eventTimeMs),
      startedAt: performance.now(),
      eventTimeMs,
      rawPath: q === -1 ? url : url.slice(0, q),
      rawQuery: q === -1 ? "" : url.slice(q + 1),
      expectsContinue: owesContinue.has(req),
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
      // 0. The one unsigned call served: STS AssumeRoleWithWebIdentity (web-identity-sts.ts).
      if (o.webIdentity !== undefined && mayBeWebIdentityCall(req, call.rawPath, call.rawQuery)) {
        if (req.method === "POST") {
          if (call.expectsContinue) res.writeContinue();
          call.body = await readBody(req, MAX_WEB_IDENTITY_BODY_BYTES);
          call.bytesIn = call.body.length;
        }
        const params = parseWebIdentityCall(call.rawQuery, call.body);
        if (params !== undefined) {
          await serveWebIdentityCall(
            {
              req,
              res,
              eventId: call.eventId,
              eventTimeMs: call.eventTimeMs,
              startedAt: call.startedAt,
              bytesIn: call.bytesIn,
              exchanger: o.webIdentity,
              recorder: o.recorder,
              edgeName: o.edgeName,
              logger: o.logger,
              config,
              tls: tlsInfo(req),
              span: call.span,
            },
            params,
          );
          return;
        }
      }
      // 1. Verify: who is calling?
      let authProblem: SigV4Problem | undefined;
      try {
        const authorization = header(req, "authorization");
        call.auth =
          (authorization === undefined ? parseSigV4Query(call.rawQuery) : undefined) ??
          parseSigV4Authorization(authorization);
      } catch (err) {
        if (!(err instanceof SigV4Problem)) throw err;
        authProblem = err;
        call.legacyAuth = err.legacy;
        // The refusal names the principal a valid gateway token claims, like a signature mismatch does.
        const legacyToken =
          err.legacy === undefined ? undefined : (err.legacy.securityToken ?? header(req, "x-amz-security-token"));
        if (legacyToken !== undefined && config !== undefined) {
          const claims = openToken(legacyToken, config);
          if (claims?.accessKeyId === err.legacy?.accessKeyId) call.claims = claims;
        }
      }
      if (call.auth !== undefined) {
        const token = call.auth.securityToken ?? header(req, "x-amz-security-token");
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
      const checkCredential = (): {
        claims: GatewayCredentialClaims;
        auth: SigV4Authorization;
        config: EdgeConfigSnapshot;
      } => {
        if (config === undefined) {
          throw new EdgeRefusal("unavailable", "no-config", "Tollgate edge has no configuration yet; try again.");
        }
        if (authProblem !== undefined || call.auth === undefined) {
          const p = authProblem ?? new SigV4Problem("missing", "Request is missing Authentication Token");
          throw new EdgeRefusal(REFUSAL_OF_PROBLEM[p.code], `auth-${p.code}`, p.message);
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
        // The token must be covered by the signature (a presigned URL's query is signed whole).
        if (call.auth.form === "header" && !call.auth.signedHeaders.includes("x-amz-security-token")) {
          throw new EdgeRefusal(
            "malformed-auth",
            "auth-unsigned-token",
            "x-amz-security-token must be a signed header when temporary credentials are used.",
          );
        }
        return { claims, auth: call.auth, config };
      };
      if (call.auth?.service !== "s3" && call.body === undefined) {
        // Non-S3 bodies are read before verification (their hash is signed): a client waiting
        // for 100 Continue gets it once its credential checked out.
        if (call.expectsContinue) {
          checkCredential();
          res.writeContinue();
        }
        call.body = await readBody(req, o.maxBufferedBodyBytes);
        call.bytesIn = call.body.length;
      }
      // 2. Classify: which service, operation, resources?
      call.classification = classify(req, call, config);

      const { claims, auth, config: checkedConfig } = checkCredential();
      let payloadHash: string;
      const declared = header(req, "x-amz-content-sha256");
      if (call.body !== undefined) {
        payloadHash = createHash("sha256").update(call.body).digest("hex");
        call.bodySha256 = payloadHash;
        if (declared !== undefined && declared !== payloadHash && !UNSIGNED_PAYLOADS.has(declared)) {
          throw new EdgeRefusal(
            "signature-mismatch",
            "payload-hash-mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
          );
        }
        if (declared !== undefined) payloadHash = declared;
      } else if (auth.form === "query" && declared === undefined) {
        // S3 presigned URLs sign no payload.
        payloadHash = "UNSIGNED-PAYLOAD";
      } else {
        if (declared === undefined) {
          throw new EdgeRefusal(
            "malformed-auth",
            "missing-content-sha256",
            "Missing required header for this request: x-amz-content-sha256",
          );
        }
        if (!UNSIGNED_PAYLOADS.has(declared) && !HEX_SHA256.test(declared) && !SIGNED_CHUNK_PAYLOADS.has(declared)) {
          throw new EdgeRefusal(
            "not-implemented",
            "payload-mode-not-implemented",
            `Payload mode ${declared.slice(0, 64)} is not supported by this Tollgate edge yet.`,
          );
        }
        payloadHash = declared;
      }
      try {
        call.amzDate = verifySigV4(
          auth,
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
          { maxSkewMs: (auth.service === "s3" ? 15 : 5) * 60_000 },
        );
      } catch (err) {
        if (!(err instanceof SigV4Problem)) throw err;
        throw new EdgeRefusal(REFUSAL_OF_PROBLEM[err.code], `signature-${err.code}`, err.message);
      }
      call.authenticated = true;

      // 3. Decide.
      const decision = decideAccess({
        claims,
        classification: call.classification,
        config: checkedConfig,
        auditHealthy: o.recorder.healthy || o.recorder.failOpenFor(claims.connection),
        nowMs: Date.now(),
      });
      if (!decision.allow) throw new EdgeRefusal(decision.kind, decision.reason, decision.message);

      // Upstream identity: static keys, the edge's own, or an assumed role for this principal.
      const upstreamConnection = checkedConfig.connections.get(claims.connection);
      if (upstreamConnection !== undefined) {
        try {
          call.upstream = await o.upstreamCredentials.resolve(upstreamConnection, claims.principal);
        } catch (err) {
          if (!(err instanceof UpstreamCredentialsError)) throw err;
          o.logger.warn({ err: err.message, eventID: call.eventId }, "upstream credentials unavailable");
          throw new EdgeRefusal(
            "unavailable",
            "upstream-credentials-unavailable",
            "Tollgate cannot obtain upstream credentials for this connection right now.",
          );
        }
      }
      call.allowed = true;
      call.reason = "allowed";

      // 4. Record, durably, before acting: the intent is fsynced to the journal or the call is refused.
      try {
        call.handle = await o.recorder.begin(buildEvent(call, req, checkedConfig));
      } catch (err) {
        if (!(err instanceof AuditUnavailableError)) throw err;
        call.allowed = false;
        throw new EdgeRefusal(
          "unavailable",
          "audit-unavailable",
          "Tollgate cannot record this call right now; refusing it.",
        );
      }
      if (call.expectsContinue && call.body === undefined) res.writeContinue();

      // 5. Forward (re-signed with the connection's upstream credentials) and stream back.
      await forward(req, res, call, checkedConfig, claims);
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
    const upstream = call.upstream;
    if (connection === undefined || upstream === undefined) {
      return Promise.reject(new EdgeRefusal("access-denied", "unknown-connection", "Unknown connection."));
    }
    const c = call.classification as Classification;
    // Host and signing region from the connection endpoint or the AWS models (never client headers).
    const route = {
      ...(c.endpointPrefix !== undefined ? { endpointPrefix: c.endpointPrefix } : {}),
      ...(c.apiService !== undefined ? { apiService: c.apiService } : {}),
      ...(c.s3Bucket !== undefined ? { s3Bucket: c.s3Bucket } : {}),
      ...(c.s3Addressing !== undefined ? { s3Addressing: c.s3Addressing } : {}),
    };
    const target = resolveUpstreamTarget(connection.upstreamEndpoint, auth.service, auth.region, route);
    // Per-service prefix stripped; a virtual-hosted bucket moves into the path for a custom endpoint.
    const rawPath = upstreamRequestPath(connection.upstreamEndpoint, call.rawPath, c);
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
    if (auth.form === "query" && auth.service === "s3" && headers["x-amz-content-sha256"] === undefined) {
      // Upstream gets header-form SigV4, for which S3 wants the payload mode named.
      headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
    }
    // A presigned URL's auth parameters stay here: upstream is signed in header form.
    const upstreamQuery = auth.form === "query" ? withoutPresignParams(call.rawQuery) : call.rawQuery;
    const payloadMode = headers["x-amz-content-sha256"] ?? "";
    const outHeaders = upstreamSigner.sign(
      {
        method: req.method ?? "GET",
        rawPath,
        rawQuery: upstreamQuery,
        headers,
        payloadHash: headers["x-amz-content-sha256"] ?? call.bodySha256 ?? EMPTY_SHA256_HEX,
      },
      upstream.credentials,
      auth.service,
      target.signingRegion,
    );
    // Signed chunks are re-signed on the upstream chain, seeded by the upstream header signature.
    const resigner = SIGNED_CHUNK_PAYLOADS.has(payloadMode)
      ? new SignedChunkResigner({
          client: {
            signingKey: signingKeys.get(claims.secretAccessKey, auth.scopeDate, auth.region, auth.service),
            amzDate: call.amzDate ?? "",
            scope: credentialScope(auth),
            seedSignature: auth.signature,
          },
          upstream: upstreamChunkContext(
            outHeaders,
            upstream.credentials.secretAccessKey,
            target.signingRegion,
            auth.service,
          ),
          trailer: payloadMode.endsWith("-TRAILER"),
          maxChunkBytes: o.maxChunkBytes,
          ...(headers["x-amz-decoded-content-length"] !== undefined
            ? { decodedContentLength: Number(headers["x-amz-decoded-content-length"]) }
            : {}),
        })
      : undefined;
    return new Promise<void>((resolve) => {
      const upstreamReq = (target.protocol === "http:" ? http : https).request({
        method: req.method,
        host: target.hostname,
        port: target.port,
        path: upstreamQuery === "" ? rawPath : `${rawPath}?${upstreamQuery}`,
        headers: outHeaders,
        agent: agents[target.protocol],
        timeout: o.upstreamTimeoutMs,
      });
      let settled = false;
      /** Object-body digests in progress; their results are in the final event. */
      const digests: Array<{ of: "requestPayload" | "responsePayload"; digest: BodyDigest }> = [];
      const done = (): void => {
        if (settled) return;
        settled = true;
        const complete = (): void => {
          finish(call, req, config);
          resolve();
        };
        if (digests.length === 0) {
          complete();
          return;
        }
        void Promise.all(
          digests.map(async ({ of, digest }) => {
            const value = await digest.settle();
            if (value !== undefined) call[of] = value;
          }),
        ).then(complete);
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
      /** The streamed body failed a check: upstream never gets the rest, the client gets S3's error. */
      const refuseBody = (err: Error): void => {
        if (settled) return;
        const [code, status, reason] =
          err instanceof SignedChunkError
            ? [err.code, err.status, "chunk-signature-mismatch"]
            : err instanceof PayloadHashMismatch
              ? [err.code, 400, "payload-hash-mismatch"]
              : ["IncompleteBody", 400, "body-error"];
        upstreamReq.destroy();
        call.allowed = false;
        call.reason = reason;
        call.errorCode = code;
        call.errorMessage = err.message;
        if (!res.headersSent) {
          const rendered = renderAwsError("restXml", {
            code,
            message: err.message,
            status,
            requestId: call.eventId,
          });
          call.httpStatus = status;
          res.setHeader("connection", "close");
          res.writeHead(status, rendered.headers);
          res.end(rendered.body);
        } else {
          res.destroy();
        }
        done();
      };
      upstreamReq.on("timeout", () => upstreamReq.destroy(new Error("upstream timeout")));
      upstreamReq.on("error", (err) => {
        failUpstream("UpstreamUnavailable", `Upstream AWS endpoint failed: ${err.message}`, 503);
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
        // An object body is the caller's data, not an AWS response: never parsed, only hashed.
        const objectBody = call.httpStatus < 300 && c.service === "s3" && OBJECT_BODY_RESPONSES.has(c.eventName);
        // A successful read's body is only needed when the request id is not in the headers
        // (its response elements are not kept), so most reads are never parsed.
        const capture =
          !objectBody &&
          (call.httpStatus >= 300 || ((!c.readOnly || call.requestId === "") && /xml|json/i.test(contentType)));
        const responseDigest =
          objectBody && o.objectDigests && req.method !== "HEAD"
            ? digestBody(up, "raw", digestPool, contentLengthOf(up.headers["content-length"]))
            : undefined;
        if (responseDigest !== undefined) digests.push({ of: "responsePayload", digest: responseDigest });
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
        relay(up, res, (err) => {
          if (err) responseDigest?.abandon();
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
      // S3 streams. A signed hash is checked before the last piece is released; signed
      // chunks are checked and re-signed one by one; unsigned bodies pass byte for byte.
      const guard = resigner ?? (HEX_SHA256.test(payloadMode) ? new PayloadHashGuard(payloadMode) : undefined);
      // Object bodies are digested as they pass (a verified signed hash is reused as it is).
      const objectBody = c.service === "s3" && OBJECT_BODY_REQUESTS.has(c.eventName);
      const digestMode =
        resigner !== undefined || payloadMode === "STREAMING-UNSIGNED-PAYLOAD-TRAILER" ? "aws-chunked" : "raw";
      const requestDigest =
        objectBody && o.objectDigests && (resigner !== undefined || guard === undefined)
          ? digestBody(req, digestMode, digestPool, contentLengthOf(req.headers["content-length"]))
          : undefined;
      if (requestDigest !== undefined) digests.push({ of: "requestPayload", digest: requestDigest });
      if (guard === undefined) {
        req.on("data", (chunk: Buffer) => {
          call.bytesIn += chunk.length;
        });
        relay(req, upstreamReq, (err) => {
          if (err) requestDigest?.abandon();
        });
        return;
      }
      // Not relay(): on a failed check the client must still get the error response,
      // and relay would destroy its socket with the request.
      guard.on("error", (err) => {
        requestDigest?.abandon();
        req.unpipe(guard);
        call.bytesIn = guard.bytes;
        refuseBody(err);
      });
      guard.on("end", () => {
        call.bytesIn = guard.bytes;
        if (requestDigest === undefined && objectBody && guard instanceof PayloadHashGuard) {
          call.requestPayload = { size: guard.bytes, sha256: payloadMode.toLowerCase() };
        }
      });
      req.on("close", () => {
        if (!req.complete) upstreamReq.destroy(new Error("client closed the request body"));
      });
      req.pipe(guard).pipe(upstreamReq);
    });
  }

  return (req, res) => {
    void handle(req, res);
  };
}

/** A Content-Length header as a number; unknown (chunked) counts as large. */
function contentLengthOf(value: string | undefined): number {
  const n = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(n) ? n : Number.POSITIVE_INFINITY;
}

/** S3 operations whose request body is an object (digested, never stored or parsed). */
const OBJECT_BODY_REQUESTS: ReadonlySet<string> = new Set(["PutObject", "UploadPart"]);
/** S3 operations whose successful response body is an object. */
const OBJECT_BODY_RESPONSES: ReadonlySet<string> = new Set(["GetObject", "GetObjectTorrent"]);

/** TLS details per client socket (a keep-alive connection carries many calls). */
const tlsInfoOfSocket = new WeakMap<TLSSocket, Omit<TlsInfo, "clientProvidedHostHeader">>();

/** CloudTrail's tlsDetails for a request that arrived over TLS (endpoint TLS or the proxy tunnel). */
function tlsInfo(req: IncomingMessage): TlsInfo | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted !== true) return undefined;
  const tlsSocket = socket as TLSSocket;
  let known = tlsInfoOfSocket.get(tlsSocket);
  if (known === undefined) {
    const cipher = tlsSocket.getCipher();
    known = { tlsVersion: tlsSocket.getProtocol() ?? "", cipherSuite: cipher.standardName || cipher.name };
    tlsInfoOfSocket.set(tlsSocket, known);
  }
  return { ...known, clientProvidedHostHeader: header(req, "host") ?? "" };
}

/** The raw query without a presigned URL's authentication parameters, raw encoding kept. */
function withoutPresignParams(rawQuery: string): string {
  if (rawQuery === "") return rawQuery;
  return rawQuery
    .split("&")
    .filter((part) => {
      const eq = part.indexOf("=");
      const name = eq === -1 ? part : part.slice(0, eq);
      return part !== "" && !PRESIGN_QUERY_PARAMS.has(name);
    })
    .join("&");
}

const SIGNATURE_IN_AUTHORIZATION = /Signature=([0-9a-f]{64})/;

/** The upstream request's chunk-signing chain, seeded by the header signature just computed. */
function upstreamChunkContext(
  signedHeaders: Record<string, string>,
  secretAccessKey: string,
  region: string,
  service: string,
): ChunkSigningContext {
  const amzDate = signedHeaders["x-amz-date"] ?? "";
  const seed = SIGNATURE_IN_AUTHORIZATION.exec(signedHeaders.authorization ?? "")?.[1];
  if (seed === undefined || amzDate === "") throw new Error("upstream signer produced no signature");
  const scopeDate = amzDate.slice(0, 8);
  return {
    signingKey: upstreamSigningKeys.get(secretAccessKey, scopeDate, region, service),
    amzDate,
    scope: credentialScope({ scopeDate, region, service }),
    seedSignature: seed,
  };
}

/** Upstream signing keys for chunk signatures (one HMAC chain per secret, day, region, service). */
const upstreamSigningKeys = new SigningKeyCache(1_000);

/**
 * Opened session tokens per credential key set: a client signs many calls with one token, and
 * opening it (AES-GCM + JSON) on each was ~2% of a small call's CPU. Keyed by the key set, so a
 * rotated or removed key is never served from here; expiry and revocation are checked per call
 * on the claims, as before. Bounded: cleared when full.
 */
const openedTokens = new WeakMap<ReadonlyMap<string, Uint8Array>, Map<string, GatewayCredentialClaims>>();
const MAX_OPENED_TOKENS = 10_000;

function openToken(token: string, config: EdgeConfigSnapshot): GatewayCredentialClaims | undefined {
  let opened = openedTokens.get(config.credentialKeys);
  if (opened === undefined) {
    opened = new Map();
    openedTokens.set(config.credentialKeys, opened);
  }
  const known = opened.get(token);
  if (known !== undefined) return known;
  let claims: GatewayCredentialClaims | undefined;
  try {
    claims = Object.freeze(openSessionToken(token, config.credentialKeys));
  } catch (err) {
    if (!(err instanceof TollgateError)) throw err;
    claims = undefined;
  }
  if (opened.size >= MAX_OPENED_TOKENS) opened.clear();
  // Only tokens that opened are kept: garbage from clients must not fill the cache.
  if (claims !== undefined) opened.set(token, claims);
  return claims;
}

/** Requests that arrived with `Expect: 100-continue` through {@link handleExpectContinue}. */
const owesContinue = new WeakSet<IncomingMessage>();

/**
 * Routes a server's `checkContinue` to the edge handler, which then answers `100 Continue` only
 * once the call is authenticated (and refuses without reading the body otherwise). Without
 * this, node answers 100 Continue to everyone before the handler runs.
 */
export function handleExpectContinue(
  server: http.Server | https.Server,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    owesContinue.add(req);
    handler(req, res);
  });
}

/** Creates the edge's HTTP server (not listening; call `listen()`). */
export function createEdgeServer(options: EdgeServerOptions): http.Server {
  const handler = createEdgeRequestHandler(options);
  const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, handler);
  handleExpectContinue(server, handler);
  return server;
}
