import { randomUUID } from "node:crypto";
import { create, toJsonString } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  AuditService,
  ConnectionService,
  CredentialService,
  EdgeAdminService,
  EdgeEnrollmentService,
  EdgeService,
  IdentityService,
  IntegrityAlertSchema,
  ServiceAccountCredentialService,
  WebIdentityService,
  WorkloadService,
} from "@tollgate/proto";
import { auditAlertSubject, TollgateError } from "@tollgate/sdk";
import { Redis } from "ioredis";
import { ApiServer, type ApiServerAddress, type DualHandler } from "./api-server.js";
import { AuditIndex } from "./audit-index.js";
import { AuditIngest } from "./audit-ingest.js";
import { AuditIntegrity } from "./audit-integrity.js";
import { createAuditServiceImpl } from "./audit-service.js";
import { ensureAuditStream } from "./audit-stream.js";
import { ConnectionRegistry } from "./connection-registry.js";
import { createConnectionServiceImpl } from "./connection-service.js";
import { ControlPlaneAudit } from "./control-plane-audit.js";
import {
  type ControlPlaneOptions,
  type ResolvedControlPlaneOptions,
  resolveControlPlaneOptions,
} from "./control-plane-options.js";
import { CredentialIssuer } from "./credential-issuer.js";
import { CredentialRevocations } from "./credential-revocations.js";
import { createCredentialServiceImpl } from "./credential-service.js";
import { createEdgeAuthInterceptor } from "./edge-auth.js";
import { createEdgeAdminServiceImpl, createEdgeEnrollmentServiceImpl } from "./edge-enrollment-service.js";
import { EdgeKeyRegistry } from "./edge-key-registry.js";
import { EdgeRegistry } from "./edge-registry.js";
import { createEdgeServiceImpl } from "./edge-service.js";
import { createIdentityServiceImpl } from "./identity-service.js";
import { createErrorMappingInterceptor } from "./infra-error.js";
import { OidcVerifier } from "./oidc-verifier.js";
import { SAML_LOGIN_PATH, SamlSso } from "./saml-sso.js";
import { SecretBox } from "./secret-box.js";
import { createServiceAccountCredentialServiceImpl } from "./service-account-credential-service.js";
import { ServiceAccountStore } from "./service-account-store.js";
import { SessionTokens } from "./session-token.js";
import { type LoadedState, loadOrCreateState } from "./state-store.js";
import { createTokenAuthInterceptor } from "./token-auth.js";
import { createTracingInterceptor } from "./tracing-interceptor.js";
import { TrustRuleStore } from "./trust-rule-store.js";
import { WebIdentityExchange } from "./web-identity-exchange.js";
import { createWebIdentityServiceImpl } from "./web-identity-service.js";
import { WebIdentityVerifier } from "./web-identity-verifier.js";
import { createWorkloadServiceImpl } from "./workload-service.js";

/** `edge` field and subject token of the alerts raised when the break-glass admin token is used. */
export const BREAK_GLASS_ALERT_SOURCE = "control-plane";

/** Hides the password of a URL so it can be logged or printed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    return url;
  }
}

/**
 * The Tollgate control plane: connection registry, credential issuance, edge configuration and
 * the audit index/query API, served over gRPC, gRPC-Web and Connect on one port.
 *
 * `start()` loads (or creates) the state under `home`, connects to Redis and NATS, ensures the
 * audit stream, starts the audit ingest and listens. `close()` undoes all of it.
 */
export class ControlPlane {
  readonly options: ResolvedControlPlaneOptions;
  readonly #shutdown = new AbortController();
  #loaded: LoadedState | undefined;
  #redis: Redis | undefined;
  #nc: NatsConnection | undefined;
  #index: AuditIndex | undefined;
  #ingest: AuditIngest | undefined;
  #integrity: AuditIntegrity | undefined;
  #server: ApiServer | undefined;
  #registry: ConnectionRegistry | undefined;
  #closing: Promise<void> | undefined;
  #silenceTimer: NodeJS.Timeout | undefined;

  constructor(options: ControlPlaneOptions) {
    this.options = resolveControlPlaneOptions(options);
  }

  /** The bound address, once started. */
  get address(): ApiServerAddress | undefined {
    return this.#server?.address;
  }

  /** `http://HOST:PORT`; throws before start(). */
  get url(): string {
    const a = this.address;
    if (a === undefined) throw new Error("control plane not started");
    return a.url;
  }

  /** True when start() created the state and token files. */
  get createdState(): boolean {
    return this.#loaded?.created ?? false;
  }

  /** The connection registry (after start). */
  get registry(): ConnectionRegistry {
    if (this.#registry === undefined) throw new Error("control plane not started");
    return this.#registry;
  }

  /** The audit index (after start). */
  get auditIndex(): AuditIndex {
    if (this.#index === undefined) throw new Error("control plane not started");
    return this.#index;
  }

  /** The audit chain verifier (after start). */
  get auditIntegrity(): AuditIntegrity {
    if (this.#integrity === undefined) throw new Error("control plane not started");
    return this.#integrity;
  }

  /**
   * Starts everything. Throws {@link TollgateError} `ERR_UNREACHABLE` (message names the URL)
   * when NATS or Redis cannot be reached, `ERR_CONFIG` for bad state or stream config. On
   * failure, whatever was opened is closed again.
   */
  async start(): Promise<ApiServerAddress> {
    const o = this.options;
    const log = o.logger;
    try {
      this.#loaded = await loadOrCreateState(o.home);
      const { state } = this.#loaded;
      if (this.#loaded.created)
        log.info({ event: "state_created", path: this.#loaded.path }, "created control-plane state and tokens");

      this.#redis = await this.#connectRedis();
      this.#nc = await this.#connectNats();
      const jsm = await jetstreamManager(this.#nc);
      const js = jetstream(this.#nc);
      await ensureAuditStream(
        jsm,
        {
          stream: o.auditStream,
          subjectPrefix: o.auditSubjectPrefix,
          maxAgeMs: o.auditMaxAgeMs,
          duplicateWindowMs: o.auditDuplicateWindowMs,
          replicas: o.auditReplicas,
        },
        log,
      );

      this.#index = new AuditIndex(o.indexPath);
      const edgeKeys = new EdgeKeyRegistry(this.#redis, o.redisPrefix);
      const nc = this.#nc;
      this.#integrity = new AuditIntegrity(this.#index, edgeKeys, log, {
        silenceAlertMs: o.auditSilenceAlertMs,
        onAlert: (alert) => {
          if (nc.isClosed()) return;
          nc.publish(
            auditAlertSubject(o.auditSubjectPrefix, alert.edge),
            toJsonString(IntegrityAlertSchema, alert, { alwaysEmitImplicit: true }),
          );
        },
      });
      this.#ingest = new AuditIngest(
        js,
        jsm,
        this.#index,
        {
          stream: o.auditStream,
          consumerName: o.auditIndexConsumer,
          replay: this.#index.created,
          subjectPrefix: o.auditSubjectPrefix,
          integrity: this.#integrity,
        },
        log,
      );
      await this.#ingest.start();
      if (o.auditSilenceAlertMs > 0) {
        const integrity = this.#integrity;
        this.#silenceTimer = setInterval(
          () => integrity.emit(integrity.checkSilence()),
          Math.max(250, Math.min(o.auditSilenceAlertMs / 4, 5000)),
        );
        this.#silenceTimer.unref();
      }

      const registry = new ConnectionRegistry(this.#redis, new SecretBox(state.dataKey), o.redisPrefix);
      this.#registry = registry;
      const issuer = new CredentialIssuer(this.#redis, state.credentialKeys, o.redisPrefix);
      const revocations = new CredentialRevocations(this.#redis, o.redisPrefix);
      const edges = new EdgeRegistry(this.#redis, o.redisPrefix, edgeKeys);
      const audit = createAuditServiceImpl({
        index: this.#index,
        js,
        stream: o.auditStream,
        subjectPrefix: o.auditSubjectPrefix,
        shutdown: this.#shutdown.signal,
        logger: log,
      });
      const controlPlaneAudit = new ControlPlaneAudit(js, o.auditSubjectPrefix, log);
      const trustRules = new TrustRuleStore(this.#redis, o.redisPrefix);
      const serviceAccounts = new ServiceAccountStore(this.#redis, o.redisPrefix);
      const webIdentity = new WebIdentityExchange({
        rules: trustRules,
        registry,
        issuer,
        revocations,
        verifier: new WebIdentityVerifier({ logger: log }),
      });
      // Services whose callers authenticate with their own credential (a service account's API
      // key) are served outside the bearer-token interceptor, reached through the fallback.
      const apiKeyHandler = connectNodeAdapter({
        interceptors: [createTracingInterceptor(), createErrorMappingInterceptor(log)],
        routes: (router) => {
          router.service(
            ServiceAccountCredentialService,
            createServiceAccountCredentialServiceImpl({
              accounts: serviceAccounts,
              registry,
              issuer,
              revocations,
              audit: controlPlaneAudit,
              logger: log,
            }),
          );
        },
        fallback: (_req, res) => {
          res.writeHead(404);
          res.end();
        },
      });
      const index = this.#index;
      const sessions = new SessionTokens(state.dataKey, this.#redis, o.redisPrefix);
      const saml =
        o.saml === undefined
          ? undefined
          : new SamlSso({
              config: o.saml,
              baseUrl: () => this.url,
              sessions,
              redis: this.#redis,
              redisPrefix: o.redisPrefix,
              sessionTtlSec: o.sessionTtlSec,
              logger: log,
            });
      const identity = createIdentityServiceImpl({
        sessions,
        oidc:
          o.oidc === undefined
            ? undefined
            : {
                verifier: new OidcVerifier({
                  issuer: o.oidc.issuer,
                  clientId: o.oidc.clientId,
                  ...(o.oidc.jwksUrl === undefined ? {} : { jwksUrl: o.oidc.jwksUrl }),
                }),
                roleMap: o.oidc.roleMap,
                ...(o.oidc.scopes === undefined ? {} : { scopes: o.oidc.scopes }),
                ...(o.oidc.principalClaim === undefined ? {} : { principalClaim: o.oidc.principalClaim }),
              },
        samlLoginPath: saml === undefined ? undefined : SAML_LOGIN_PATH,
        sessionTtlSec: o.sessionTtlSec,
        logger: log,
      });
      // The shared edge token is a legacy/dev credential: refused unless explicitly allowed.
      if (o.allowSharedEdgeToken) {
        log.warn(
          { event: "shared_edge_token_allowed" },
          "the shared edge token is accepted (TOLLGATE_ALLOW_SHARED_EDGE_TOKEN); enroll edges instead",
        );
      }
      const auth = createTokenAuthInterceptor({
        tokens: {
          adminTokenSha256: state.adminTokenSha256,
          ...(o.allowSharedEdgeToken ? { edgeTokenSha256: state.edgeTokenSha256 } : {}),
        },
        authenticators: [sessions.authenticator()],
        onBreakGlass: (procedure) => {
          // Break-glass use is an alert, in the index (ListAlerts) and on NATS. Not an event on the
          // audit stream: that would put admin reads among the AWS calls every query returns.
          const timeMs = Date.now();
          const alert = create(IntegrityAlertSchema, {
            alertId: randomUUID(),
            time: new Date(timeMs).toISOString(),
            edge: BREAK_GLASS_ALERT_SOURCE,
            kind: "break-glass",
            detail: `break-glass admin token used: ${procedure}`,
          });
          try {
            index.insertAlert({
              alertId: alert.alertId,
              timeMs,
              edge: alert.edge,
              kind: alert.kind,
              sequence: 0n,
              eventId: "",
              detail: alert.detail,
              streamSeq: 0,
            });
          } catch (err) {
            log.error({ err }, "cannot store the break-glass alert");
          }
          if (!nc.isClosed()) {
            nc.publish(
              auditAlertSubject(o.auditSubjectPrefix, BREAK_GLASS_ALERT_SOURCE),
              toJsonString(IntegrityAlertSchema, alert, { alwaysEmitImplicit: true }),
            );
          }
        },
        logger: log,
      });
      const handler = connectNodeAdapter({
        interceptors: [
          createTracingInterceptor(),
          createErrorMappingInterceptor(log),
          createEdgeAuthInterceptor({ edges, keys: edgeKeys, logger: log }),
          auth,
        ],
        routes: (router) => {
          router.service(ConnectionService, createConnectionServiceImpl(registry, log));
          router.service(CredentialService, createCredentialServiceImpl(registry, issuer, revocations, log));
          router.service(
            EdgeService,
            createEdgeServiceImpl({
              registry,
              credentialKeys: state.credentialKeys,
              audit: { stream: o.auditStream, subjectPrefix: o.auditSubjectPrefix },
              edgeKeys,
              edges,
              revocations,
              logger: log,
            }),
          );
          router.service(EdgeAdminService, createEdgeAdminServiceImpl(edges, log));
          router.service(AuditService, audit);
          router.service(
            WorkloadService,
            createWorkloadServiceImpl({ registry, rules: trustRules, accounts: serviceAccounts, logger: log }),
          );
          router.service(WebIdentityService, createWebIdentityServiceImpl(webIdentity, log));
          router.service(IdentityService, identity);
        },
        fallback: (req, res) => {
          if (req.url?.startsWith(`/${ServiceAccountCredentialService.typeName}/`)) {
            apiKeyHandler(req, res);
            return;
          }
          if (saml?.handle(req, res)) return;
          if (req.method === "GET" && (req.url === "/healthz" || req.url?.startsWith("/healthz?"))) {
            res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
            res.end("ok");
            return;
          }
          res.writeHead(404);
          res.end();
        },
      });
      // Enrollment carries its own one-time token, so it is served outside the bearer-token
      // interceptor; everything else falls through to the authenticated handler.
      const enrollment = connectNodeAdapter({
        interceptors: [createTracingInterceptor(), createErrorMappingInterceptor(log)],
        routes: (router) => {
          router.service(EdgeEnrollmentService, createEdgeEnrollmentServiceImpl(edges, log));
        },
        fallback: handler,
      });
      this.#server = new ApiServer(enrollment as DualHandler);
      return await this.#server.listen(o.port, o.host);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async #connectRedis(): Promise<Redis> {
    const o = this.options;
    const redis = new Redis(o.redisUrl, {
      lazyConnect: true,
      connectTimeout: o.connectTimeoutMs,
      // Fail requests quickly while Redis is down so clients get Unavailable, not a hang.
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    redis.on("error", (err) => o.logger.debug({ err }, "redis connection error"));
    try {
      await redis.connect();
      await redis.ping();
    } catch (cause) {
      redis.disconnect();
      throw new TollgateError("ERR_UNREACHABLE", `cannot reach Redis at ${redactUrl(o.redisUrl)}`, { cause });
    }
    return redis;
  }

  async #connectNats(): Promise<NatsConnection> {
    const o = this.options;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: o.natsUrl.split(",").map((s) => s.trim()),
        name: "tollgate-control-plane",
        timeout: o.connectTimeoutMs,
      });
    } catch (cause) {
      throw new TollgateError("ERR_UNREACHABLE", `cannot reach NATS at ${redactUrl(o.natsUrl)}`, { cause });
    }
    void (async () => {
      for await (const s of nc.status()) o.logger.debug({ nats: s.type }, "nats status");
    })();
    return nc;
  }

  /** Stops serving and releases every connection. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#shutdown.abort();
    if (this.#silenceTimer !== undefined) clearInterval(this.#silenceTimer);
    await this.#server?.close();
    await this.#ingest?.stop();
    this.#index?.close();
    if (this.#nc !== undefined && !this.#nc.isClosed()) await this.#nc.drain().catch(() => this.#nc?.close());
    if (this.#redis !== undefined && this.#redis.status !== "end") {
      await this.#redis.quit().catch(() => this.#redis?.disconnect());
    }
  }
}
