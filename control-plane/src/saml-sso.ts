import { randomBytes } from "node:crypto";
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { type CacheItem, type CacheProvider, type Profile, SAML, ValidateInResponseTo } from "@node-saml/node-saml";
import type { Redis } from "ioredis";
import { PRINCIPAL_PATTERN } from "./credential-issuer.js";
import type { Logger } from "./logger.js";
import { mapRoles, type RoleRule } from "./role-mapping.js";
import { DEFAULT_SESSION_TTL_SEC, MAX_SESSION_TTL_SEC, type SessionTokens } from "./session-token.js";

/** SAML 2.0 SSO settings (the control plane is the service provider). */
export interface SamlConfig {
  /** IdP single sign-on URL (HTTP-Redirect binding). */
  entryPoint: string;
  /** IdP signing certificate(s), PEM. Only assertions signed by one of them are accepted. */
  idpCert: string | string[];
  /** IdP entity id; when set, the assertion's Issuer must equal it. */
  idpIssuer?: string;
  /** This service provider's entity id (Issuer of AuthnRequests). */
  spEntityId: string;
  /** Expected Audience; default `spEntityId`. */
  audience?: string;
  /** Public URL of `POST /saml/acs`, checked as Recipient/Destination. Default `<control plane URL>/saml/acs`. */
  acsUrl?: string;
  /** Attributes → roles (same format as the OIDC role map; `claim` names a SAML attribute). */
  roleMap: RoleRule[];
  /** Attribute naming the person (principal `saml:<value>`); default the NameID. */
  principalAttribute?: string;
  /** Tolerated clock difference, ms; default 60000, at most 300000. */
  clockSkewMs?: number;
}

/** HTTP paths served for SAML. */
export const SAML_LOGIN_PATH = "/saml/login";
export const SAML_ACS_PATH = "/saml/acs";

const MAX_BODY_BYTES = 512 * 1024;
const RELAY_TTL_MS = 10 * 60_000;
const STATE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

type Req = http.IncomingMessage | http2.Http2ServerRequest;
/** The parts of an HTTP/1 or HTTP/2 response used here. */
interface Res {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** A refused SAML response; `reason` is a stable code, `message` safe to show and log. */
export class SamlLoginError extends Error {
  override readonly name = "SamlLoginError";
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** node-saml's request-id cache in Redis, so InResponseTo works across restarts and replicas. */
class RedisCache implements CacheProvider {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    readonly ttlMs: number,
  ) {}
  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    const ok = await this.redis.set(`${this.prefix}${key}`, value, "PX", this.ttlMs, "NX");
    return ok === "OK" ? { value, createdAt: Date.now() } : null;
  }
  async getAsync(key: string): Promise<string | null> {
    return await this.redis.get(`${this.prefix}${key}`);
  }
  async removeAsync(key: string | null): Promise<string | null> {
    if (key === null) return null;
    return await this.redis.getdel(`${this.prefix}${key}`);
  }
}

/** Maps node-saml's error messages to reason codes, without echoing assertion contents. */
function classify(err: unknown): SamlLoginError {
  if (err instanceof SamlLoginError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const table: [RegExp, string, string][] = [
    [/multiple assertions/i, "signature_wrapping", "more than one assertion (signature wrapping refused)"],
    [/signature/i, "bad_signature", "the assertion is not signed by the configured IdP"],
    [/audience/i, "wrong_audience", "the assertion is for another audience"],
    [/expired|NotOnOrAfter|NotBefore|not yet valid|too old/i, "expired", "the assertion is expired or not yet valid"],
    // node-saml keeps only subject confirmations within their time window.
    [/no valid subject confirmation/i, "expired", "the assertion is expired or not yet valid"],
    [/InResponseTo/i, "unsolicited_or_replayed", "the response answers no pending login (replayed or unsolicited)"],
    [/issuer/i, "wrong_issuer", "the assertion comes from another IdP"],
    [/status/i, "idp_error", "the IdP reported a failed login"],
  ];
  for (const [pattern, reason, message] of table) {
    if (pattern.test(msg)) return new SamlLoginError(reason, message, { cause: err });
  }
  return new SamlLoginError("invalid_response", "the SAML response is not valid", { cause: err });
}

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

function page(res: Res, status: number, title: string, bodyHtml: string): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${bodyHtml}</body></html>`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; form-action http://127.0.0.1:*",
  });
  res.end(html);
}

async function readForm(req: Req): Promise<URLSearchParams> {
  const type = String(req.headers["content-type"] ?? "");
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    throw new SamlLoginError("bad_request", "expected an HTML form post");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new SamlLoginError("bad_request", "SAML response too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

type Xml = Record<string, unknown>;
const first = (v: unknown): Xml | undefined => (Array.isArray(v) ? (v[0] as Xml | undefined) : undefined);
const attrs = (v: Xml | undefined): Record<string, string> => (v?.$ as Record<string, string> | undefined) ?? {};

/** Options for {@link SamlSso}. */
export interface SamlSsoOptions {
  config: SamlConfig;
  /** Base URL of the control plane (known after listen). */
  baseUrl: () => string;
  sessions: SessionTokens;
  redis: Redis;
  redisPrefix: string;
  sessionTtlSec?: number;
  logger: Logger;
}

/**
 * SAML 2.0 SSO service provider on the control plane's port: `GET /saml/login` redirects to the
 * IdP with an AuthnRequest; `POST /saml/acs` validates the response (node-saml: signature by
 * the configured IdP certificate over the assertion, audience, time conditions with bounded
 * skew, InResponseTo a pending request) and, here, Recipient/Destination and a replay cache of
 * assertion ids; then issues a Tollgate session token, handed to a `tollgate login --saml`
 * loopback listener or shown on the page.
 */
export class SamlSso {
  readonly #o: SamlSsoOptions;
  #saml: SAML | undefined;

  constructor(options: SamlSsoOptions) {
    this.#o = options;
  }

  get acsUrl(): string {
    return this.#o.config.acsUrl ?? `${this.#o.baseUrl()}${SAML_ACS_PATH}`;
  }

  #sp(): SAML {
    if (this.#saml !== undefined) return this.#saml;
    const c = this.#o.config;
    const skew = Math.min(Math.max(c.clockSkewMs ?? 60_000, 0), 300_000);
    this.#saml = new SAML({
      entryPoint: c.entryPoint,
      idpCert: c.idpCert,
      ...(c.idpIssuer === undefined ? {} : { idpIssuer: c.idpIssuer }),
      issuer: c.spEntityId,
      audience: c.audience ?? c.spEntityId,
      callbackUrl: this.acsUrl,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      acceptedClockSkewMs: skew,
      maxAssertionAgeMs: 0,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: RELAY_TTL_MS,
      cacheProvider: new RedisCache(this.#o.redis, `${this.#o.redisPrefix}saml-request:`, RELAY_TTL_MS),
      identifierFormat: null,
      disableRequestedAuthnContext: true,
    });
    return this.#saml;
  }

  /** Handles the SAML paths; returns false for any other request. */
  handle(req: Req, res: Res): boolean {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === SAML_LOGIN_PATH && req.method === "GET") {
      void this.#login(url, res).catch((err: unknown) => this.#fail(res, err));
      return true;
    }
    if (url.pathname === SAML_ACS_PATH && req.method === "POST") {
      void this.#acs(req, res).catch((err: unknown) => this.#fail(res, err));
      return true;
    }
    return false;
  }

  #fail(res: Res, err: unknown): void {
    const e = classify(err);
    const infra = !(err instanceof SamlLoginError) && /redis|ECONNREFUSED|Connection is closed/i.test(String(err));
    if (infra) {
      this.#o.logger.warn({ err, component: "redis" }, "SAML login: registry store unavailable");
      if (!res.headersSent) page(res, 503, "Unavailable", "<p>SAML login is unavailable, try again.</p>");
      return;
    }
    // Reason code and our own message only: never the assertion or node-saml's text (it can quote it).
    this.#o.logger.warn(
      { event: "login_refused", method: "saml", reason: e.reason },
      `SAML login refused: ${e.message}`,
    );
    if (!res.headersSent) {
      page(
        res,
        e.reason === "bad_request" ? 400 : 403,
        "Login refused",
        `<p>SAML login refused: ${escapeHtml(e.message)}</p>`,
      );
    }
  }

  async #login(url: URL, res: Res): Promise<void> {
    const portText = url.searchParams.get("port");
    const state = url.searchParams.get("state");
    let relay: { port: number; state: string } | undefined;
    if (portText !== null || state !== null) {
      const port = Number(portText);
      if (
        !/^\d{1,5}$/.test(portText ?? "") ||
        port < 1024 ||
        port > 65535 ||
        state === null ||
        !STATE_PATTERN.test(state)
      ) {
        throw new SamlLoginError("bad_request", "port must be a TCP port >= 1024 and state 16-128 URL-safe characters");
      }
      relay = { port, state };
    }
    const relayId = randomBytes(18).toString("base64url");
    await this.#o.redis.set(
      `${this.#o.redisPrefix}saml-relay:${relayId}`,
      JSON.stringify(relay ?? {}),
      "PX",
      RELAY_TTL_MS,
    );
    const location = await this.#sp().getAuthorizeUrlAsync(relayId, undefined, {});
    res.writeHead(302, { location, "cache-control": "no-store" });
    res.end("");
  }

  async #acs(req: Req, res: Res): Promise<void> {
    const form = await readForm(req);
    const samlResponse = form.get("SAMLResponse");
    if (samlResponse === null || samlResponse === "") throw new SamlLoginError("bad_request", "no SAMLResponse");
    const relayId = form.get("RelayState") ?? "";

    const { profile } = await this.#sp().validatePostResponseAsync({ SAMLResponse: samlResponse });
    if (profile === null) throw new SamlLoginError("invalid_response", "the SAML response carries no assertion");
    const assertion = this.#checkSignedAssertion(profile, samlResponse);

    // Replay cache: the (signed) assertion id, kept as long as the assertion could be valid.
    const keepMs = Math.max(60_000, assertion.notOnOrAfterMs - Date.now() + 300_000);
    const fresh = await this.#o.redis.set(
      `${this.#o.redisPrefix}saml-assertion:${assertion.id}`,
      "1",
      "PX",
      keepMs,
      "NX",
    );
    if (fresh !== "OK") throw new SamlLoginError("replayed", "this assertion was already used (replay refused)");

    const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
    const c = this.#o.config;
    const nameFromAttr = c.principalAttribute === undefined ? undefined : attributes[c.principalAttribute];
    const name =
      typeof nameFromAttr === "string"
        ? nameFromAttr
        : Array.isArray(nameFromAttr)
          ? String(nameFromAttr[0])
          : profile.nameID;
    const principal = `saml:${name}`;
    if (!PRINCIPAL_PATTERN.test(principal))
      throw new SamlLoginError("bad_identity", "the identity's name cannot be a Tollgate principal");
    const mapped = mapRoles(attributes, c.roleMap);
    if (mapped.roles.length === 0) {
      this.#o.logger.warn({ event: "login_refused", method: "saml", reason: "no_role", principal }, "no role maps");
      throw new SamlLoginError("no_role", `${principal} has no Tollgate role`);
    }
    const ttlSec = Math.min(this.#o.sessionTtlSec ?? DEFAULT_SESSION_TTL_SEC, MAX_SESSION_TTL_SEC);
    let expiresAtSec = Math.floor(Date.now() / 1000) + ttlSec;
    if (assertion.sessionNotOnOrAfterMs !== undefined) {
      expiresAtSec = Math.min(expiresAtSec, Math.floor(assertion.sessionNotOnOrAfterMs / 1000));
    }
    const issued = await this.#o.sessions.issue(
      {
        principal,
        roles: mapped.roles,
        connections: mapped.connections,
        authMethod: "saml",
        idpIssuer: profile.issuer,
        idpSubject: profile.nameID,
      },
      expiresAtSec,
    );
    this.#o.logger.info(
      { event: "login", method: "saml", principal, roles: mapped.roles, sessionId: issued.sessionId },
      "logged in",
    );

    const relayText = relayId === "" ? null : await this.#o.redis.getdel(`${this.#o.redisPrefix}saml-relay:${relayId}`);
    const relay = relayText === null ? {} : (JSON.parse(relayText) as { port?: number; state?: string });
    if (relay.port !== undefined && relay.state !== undefined) {
      // Hand the token to the CLI's loopback listener with a form post (not in a URL).
      const action = `http://127.0.0.1:${relay.port}/callback`;
      page(
        res,
        200,
        "Tollgate login",
        `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="state" value="${escapeHtml(relay.state)}"><input type="hidden" name="session_token" value="${escapeHtml(issued.token)}"><p>Logged in as ${escapeHtml(principal)}. Returning to the CLI…</p><noscript><button type="submit">Continue</button></noscript></form><script>document.forms[0].submit()</script>`,
      );
      return;
    }
    page(
      res,
      200,
      "Tollgate login",
      `<p>Logged in as ${escapeHtml(principal)} (${escapeHtml(mapped.roles.join(", "))}).</p><p>Session token (keep it secret; the CLI uses it from <code>TOLLGATE_SESSION_TOKEN</code>, or run <code>tollgate login --saml</code>):</p><pre id="session-token">${escapeHtml(issued.token)}</pre>`,
    );
  }

  /** Recipient/Destination, id and times, read from the verified assertion only. */
  #checkSignedAssertion(
    profile: Profile,
    samlResponse: string,
  ): { id: string; notOnOrAfterMs: number; sessionNotOnOrAfterMs?: number } {
    const parsed = profile.getAssertion?.() as { Assertion?: Xml } | undefined;
    const assertion = parsed?.Assertion;
    const id = attrs(assertion).ID;
    if (assertion === undefined || id === undefined || id === "") {
      throw new SamlLoginError("invalid_response", "the assertion has no ID");
    }
    const acsUrl = this.acsUrl;
    const confirmations = (first(assertion.Subject)?.SubjectConfirmation as Xml[] | undefined) ?? [];
    let notOnOrAfterMs = 0;
    let recipientOk = false;
    for (const sc of confirmations) {
      const data = attrs(first(sc.SubjectConfirmationData));
      if (data.Recipient === acsUrl) recipientOk = true;
      if (data.NotOnOrAfter !== undefined) notOnOrAfterMs = Math.max(notOnOrAfterMs, Date.parse(data.NotOnOrAfter));
    }
    if (!recipientOk) throw new SamlLoginError("wrong_recipient", "the assertion is for another recipient");
    const conditions = attrs(first(assertion.Conditions));
    if (conditions.NotOnOrAfter !== undefined) {
      notOnOrAfterMs = Math.max(notOnOrAfterMs, Date.parse(conditions.NotOnOrAfter));
    }
    // Destination is on the (possibly unsigned) Response; when present it must be us.
    const xml = Buffer.from(samlResponse, "base64").toString("utf8");
    const destination = /<(?:[A-Za-z_][\w.-]*:)?Response\b[^>]*?\sDestination\s*=\s*"([^"]*)"/.exec(xml)?.[1];
    if (destination !== undefined && destination !== acsUrl) {
      throw new SamlLoginError("wrong_destination", "the response is for another destination");
    }
    const sessionNotOnOrAfter = attrs(first(assertion.AuthnStatement)).SessionNotOnOrAfter;
    const sessionNotOnOrAfterMs = sessionNotOnOrAfter === undefined ? Number.NaN : Date.parse(sessionNotOnOrAfter);
    return {
      id,
      notOnOrAfterMs: Number.isFinite(notOnOrAfterMs) && notOnOrAfterMs > 0 ? notOnOrAfterMs : Date.now(),
      ...(Number.isFinite(sessionNotOnOrAfterMs) ? { sessionNotOnOrAfterMs } : {}),
    };
  }
}
