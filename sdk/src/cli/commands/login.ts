import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Session } from "@tollgate/proto";
import * as oidc from "openid-client";
import type { ControlPlaneClient } from "../../control-plane-client.js";
import { CliError } from "../cli-error.js";
import type { CliIo } from "../io.js";
import { readSessionFile, removeSessionFile, sessionPath, writeSessionFile } from "../session-file.js";

/** How `tollgate login` authenticates the person. */
export type LoginMethod = "device" | "browser" | "saml";

/** Options of {@link loginCommand}. */
export interface LoginOptions {
  home: string;
  apiUrl: string;
  method: LoginMethod;
  /** How long to wait for the person, ms. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

function isLoopback(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname);
}

function expiry(session: Session | undefined): string {
  const seconds = session?.expireTime?.seconds;
  return seconds === undefined ? "" : new Date(Number(seconds) * 1000).toISOString();
}

async function discover(issuer: string, clientId: string): Promise<oidc.Configuration> {
  const url = new URL(issuer);
  // Plain HTTP only for an issuer on this machine (development, tests).
  const insecure = url.protocol === "http:" && isLoopback(url);
  if (url.protocol !== "https:" && !insecure) throw new CliError(`the OIDC issuer ${issuer} must use https`);
  try {
    return await oidc.discovery(
      url,
      clientId,
      undefined,
      oidc.None(),
      insecure ? { execute: [oidc.allowInsecureRequests] } : {},
    );
  } catch (err) {
    throw new CliError(`cannot reach the OIDC issuer ${issuer}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A one-shot listener on 127.0.0.1 for the IdP's (or the control plane's) redirect back to the CLI. */
class LoopbackListener {
  readonly #server: http.Server;
  readonly #result: Promise<{ url: URL; form: URLSearchParams }>;

  private constructor(server: http.Server, result: Promise<{ url: URL; form: URLSearchParams }>) {
    this.#server = server;
    this.#result = result;
  }

  static async start(state: string): Promise<LoopbackListener> {
    let settle!: (v: { url: URL; form: URLSearchParams }) => void;
    const result = new Promise<{ url: URL; form: URLSearchParams }>((resolve) => {
      settle = resolve;
    });
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const done = (form: URLSearchParams): void => {
        // Only the answer to this login (matching state) completes it; anything else is ignored.
        const gotState = form.get("state") ?? url.searchParams.get("state");
        if (url.pathname !== "/callback" || gotState !== state) {
          res
            .writeHead(400, { "content-type": "text/plain; charset=utf-8" })
            .end("not the login this CLI is waiting for\n");
          return;
        }
        res
          .writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" })
          .end("Tollgate login complete; you can close this window.\n");
        settle({ url, form });
      };
      if (req.method === "POST") {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on("data", (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) req.destroy();
          else chunks.push(c);
        });
        req.on("end", () => done(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
      } else {
        done(new URLSearchParams());
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return new LoopbackListener(server, result);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async wait(timeoutMs: number, signal?: AbortSignal): Promise<{ url: URL; form: URLSearchParams }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CliError("login timed out")), timeoutMs);
      signal?.addEventListener("abort", () => reject(new CliError("login interrupted")), { once: true });
    });
    try {
      return await Promise.race([this.#result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.#server.closeAllConnections();
    this.#server.close();
  }
}

async function oidcIdToken(
  client: ControlPlaneClient,
  options: LoginOptions,
  io: CliIo,
): Promise<{ idToken: string; nonce: string }> {
  const config = await client.identity.getLoginConfig({});
  if (config.oidcIssuer === "") {
    throw new CliError(
      config.samlLoginPath === ""
        ? "this control plane has no login configured (TOLLGATE_OIDC_* or TOLLGATE_SAML_*)"
        : "this control plane uses SAML: run `tollgate login --saml`",
    );
  }
  const discovered = await discover(config.oidcIssuer, config.oidcClientId);
  const scope = config.oidcScopes.join(" ") || "openid";

  if (options.method === "device") {
    let device: Awaited<ReturnType<typeof oidc.initiateDeviceAuthorization>>;
    try {
      device = await oidc.initiateDeviceAuthorization(discovered, { scope });
    } catch (err) {
      throw new CliError(
        `the OIDC issuer refused the device login: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    io.err(
      `To log in, open ${device.verification_uri} and enter the code ${device.user_code}\n` +
        (device.verification_uri_complete === undefined ? "" : `or open ${device.verification_uri_complete}\n`),
    );
    const signal = AbortSignal.any([
      AbortSignal.timeout(Math.min(options.timeoutMs, device.expires_in * 1000)),
      ...(options.signal === undefined ? [] : [options.signal]),
    ]);
    let tokens: Awaited<ReturnType<typeof oidc.pollDeviceAuthorizationGrant>>;
    try {
      tokens = await oidc.pollDeviceAuthorizationGrant(discovered, device, undefined, { signal });
    } catch (err) {
      throw new CliError(`device login failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (tokens.id_token === undefined)
      throw new CliError("the OIDC issuer returned no ID token (is `openid` in scope?)");
    return { idToken: tokens.id_token, nonce: "" };
  }

  // Authorization code + PKCE with a loopback redirect (RFC 8252).
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const verifier = oidc.randomPKCECodeVerifier();
  const listener = await LoopbackListener.start(state);
  try {
    const redirectUri = `http://127.0.0.1:${listener.port}/callback`;
    const url = oidc.buildAuthorizationUrl(discovered, {
      redirect_uri: redirectUri,
      scope,
      response_type: "code",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    io.err(`To log in, open this URL in a browser:\n${url.href}\n`);
    const { url: callback } = await listener.wait(options.timeoutMs, options.signal);
    const current = new URL(callback.pathname + callback.search, redirectUri);
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(discovered, current, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw new CliError(`login failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (tokens.id_token === undefined) throw new CliError("the OIDC issuer returned no ID token");
    return { idToken: tokens.id_token, nonce };
  } finally {
    listener.close();
  }
}

async function samlSessionToken(client: ControlPlaneClient, options: LoginOptions, io: CliIo): Promise<string> {
  const config = await client.identity.getLoginConfig({});
  if (config.samlLoginPath === "") throw new CliError("this control plane has no SAML login configured");
  const state = randomBytes(24).toString("base64url");
  const listener = await LoopbackListener.start(state);
  try {
    const url = new URL(config.samlLoginPath, options.apiUrl);
    url.searchParams.set("port", String(listener.port));
    url.searchParams.set("state", state);
    io.err(`To log in, open this URL in a browser:\n${url.href}\n`);
    const { form } = await listener.wait(options.timeoutMs, options.signal);
    const token = form.get("session_token");
    if (token === null || token === "") throw new CliError("the control plane handed back no session token");
    return token;
  } finally {
    listener.close();
  }
}

/** `tollgate login`: OIDC (device flow or browser + PKCE) or SAML; stores the session in session.json. */
export async function loginCommand(
  anonymous: ControlPlaneClient,
  withToken: (token: string) => ControlPlaneClient,
  options: LoginOptions,
  io: CliIo,
): Promise<void> {
  let token: string;
  let session: Session | undefined;
  if (options.method === "saml") {
    token = await samlSessionToken(anonymous, options, io);
    session = (await withToken(token).identity.whoAmI({})).session;
  } else {
    const { idToken, nonce } = await oidcIdToken(anonymous, options, io);
    const res = await anonymous.identity.login({ idToken, nonce });
    token = res.sessionToken;
    session = res.session;
  }
  if (session === undefined) throw new CliError("the control plane returned no session");
  writeSessionFile(options.home, {
    apiUrl: options.apiUrl,
    token,
    principal: session.principal,
    roles: [...session.roles],
    authMethod: session.authMethod,
    expiresAt: expiry(session),
  });
  io.out(`logged in as ${session.principal} (${session.roles.join(", ")}) until ${expiry(session)}\n`);
}

/** `tollgate whoami`. */
export async function whoAmICommand(client: ControlPlaneClient, options: { json: boolean }, io: CliIo): Promise<void> {
  const { session } = await client.identity.whoAmI({});
  if (session === undefined) throw new CliError("the control plane returned no session");
  if (options.json) {
    io.out(
      `${JSON.stringify({
        principal: session.principal,
        roles: session.roles,
        kind: session.kind,
        authMethod: session.authMethod,
        expiresAt: expiry(session) || null,
        connections: session.connections,
        idpIssuer: session.idpIssuer || null,
        idpSubject: session.idpSubject || null,
      })}\n`,
    );
    return;
  }
  const lines = [
    `principal:   ${session.principal}`,
    `roles:       ${session.roles.join(", ") || "(none)"}`,
    `auth:        ${session.authMethod}`,
  ];
  if (session.connections.length > 0) lines.push(`connections: ${session.connections.join(", ")}`);
  if (session.idpIssuer !== "") lines.push(`idp:         ${session.idpIssuer} (${session.idpSubject})`);
  const exp = expiry(session);
  if (exp !== "") lines.push(`expires:     ${exp}`);
  io.out(`${lines.join("\n")}\n`);
}

/** `tollgate logout`: revokes the stored session at the control plane and deletes session.json. */
export async function logoutCommand(
  withToken: (token: string, apiUrl: string) => ControlPlaneClient,
  home: string,
  io: CliIo,
): Promise<void> {
  const session = readSessionFile(home);
  if (session === undefined) {
    io.out("not logged in\n");
    return;
  }
  try {
    await withToken(session.token, session.apiUrl).identity.logout({});
  } catch (err) {
    // An expired or already revoked session needs no revocation; anything else is reported,
    // but the local file goes either way.
    if (!(err instanceof ConnectError && err.code === Code.Unauthenticated)) {
      io.err(
        `tollgate: warning: could not revoke the session at ${session.apiUrl}: ${err instanceof Error ? err.message : String(err)}\n`,
      );
    }
  }
  removeSessionFile(home);
  io.out(`logged out ${session.principal} (removed ${sessionPath(home)})\n`);
}
