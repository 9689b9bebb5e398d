/**
 * People log in with OIDC against a real provider (`oidc-provider`, random port): `tollgate
 * login` by the device authorization grant and by authorization code + PKCE on a loopback
 * redirect, the test playing the person (posting the provider's login and consent forms). Then
 * `tollgate whoami` and the role table: an auditor queries audit but may not create
 * connections, an admin may, an agent gets credentials only for itself.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, cleanupNames, NATS_URL, REDIS_URL, runProcess, uniqueNames } from "./support/dev-instance.js";
import { FormBrowser } from "./support/form-browser.js";
import {
  adminClientFor,
  CONTROL_PLANE_MAIN,
  type ServerProcess,
  startServerProcess,
} from "./support/tollgate-processes.js";

const CLIENT_ID = "tollgate-cli";
const GROUPS: Record<string, string[]> = {
  alice: ["tollgate-auditors"],
  bob: ["tollgate-admins", "engineering"],
  bot: ["ci-agents"],
  eve: ["interns"],
};

type ProviderCtor = new (
  issuer: string,
  configuration: Record<string, unknown>,
) => { callback(): (req: IncomingMessage, res: ServerResponse) => void };

let idp: Server;
let issuer: string;
let cp: ServerProcess;
let cpHome: string;
const names = uniqueNames();
const homes: string[] = [];

/** A CLI process left running (login waits for the person). */
interface RunningCli {
  child: ChildProcess;
  stderr: () => string;
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  done: Promise<{ code: number; stdout: string; stderr: string }>;
}

function startCli(args: string[], env: NodeJS.ProcessEnv): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  return {
    child,
    stderr: () => stderr,
    async waitForStderr(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(stderr);
        if (m !== null) return m;
        if (child.exitCode !== null) throw new Error(`CLI exited ${child.exitCode}: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    done,
  };
}

/** A fresh TOLLGATE_HOME for one person's CLI, pointed at the control plane. */
function personEnv(): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), "tollgate-person-"));
  homes.push(home);
  const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_HOME: home, TOLLGATE_API_URL: cp.url };
  delete env.TOLLGATE_ADMIN_TOKEN;
  delete env.TOLLGATE_SESSION_TOKEN;
  return env;
}

/** The person at the provider: log in as `account`, consent. Returns the last page. */
async function actAtProvider(browser: FormBrowser, startUrl: string, account: string) {
  let page = await browser.get(startUrl);
  for (let step = 0; step < 8; step++) {
    if (page.html.includes('name="prompt" value="login"')) {
      page = await browser.submit(page, { login: account, password: "any" });
    } else if (page.html.includes('name="prompt" value="consent"')) {
      page = await browser.submit(page);
    } else if (page.html.includes("op.deviceConfirmForm") || page.html.includes("document.forms[0].submit()")) {
      // The confirm button, or a page a browser would auto-submit.
      page = await browser.submit(page);
    } else {
      return page;
    }
  }
  return page;
}

async function deviceLogin(
  account: string,
): Promise<{ env: NodeJS.ProcessEnv; result: { code: number; stdout: string; stderr: string } }> {
  const env = personEnv();
  const cli = startCli(["login"], env);
  const code = (await cli.waitForStderr(/enter the code (\S+)/))[1] as string;
  const complete = (await cli.waitForStderr(/or open (\S+)/))[1] as string;
  expect(complete).toContain(encodeURIComponent(code).slice(0, 2));
  const browser = new FormBrowser();
  const last = await actAtProvider(browser, complete, account);
  expect(last.status, last.html).toBe(200);
  const result = await Promise.race([
    cli.done,
    new Promise<never>((_, reject) =>
      setTimeout(() => {
        cli.child.kill();
        reject(
          new Error(
            `login did not finish; CLI said: ${cli.stderr()}; visited ${browser.visited.join(" ")}; last page: ${last.html.slice(0, 800)}`,
          ),
        );
      }, 60_000),
    ),
  ]);
  return { env, result };
}

async function browserLogin(
  account: string,
): Promise<{ env: NodeJS.ProcessEnv; result: { code: number; stdout: string; stderr: string }; browser: FormBrowser }> {
  const env = personEnv();
  const cli = startCli(["login", "--browser"], env);
  const url = (await cli.waitForStderr(/open this URL in a browser:\n(\S+)/))[1] as string;
  const browser = new FormBrowser();
  const last = await actAtProvider(browser, url, account);
  expect(last.html).toContain("login complete");
  return { env, result: await cli.done, browser };
}

const cli = (env: NodeJS.ProcessEnv, args: string[]) => runProcess(process.execPath, [CLI, ...args], env);

beforeAll(async () => {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503);
    res.end();
  };
  idp = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: "idp-rs256", alg: "RS256", use: "sig" };
  const specifier: string = "oidc-provider";
  const Provider = ((await import(specifier)) as { default: ProviderCtor }).default;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        response_types: ["code"],
        // RFC 8252: any port on the loopback address.
        redirect_uris: ["http://127.0.0.1/callback"],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: ["a-cookie-key-for-tests-only-0123456789"] },
    scopes: ["openid", "email", "profile", "groups"],
    claims: { email: ["email", "email_verified"], groups: ["groups"], profile: ["name"] },
    // Put the scope's claims in the ID token (most enterprise IdPs do for groups).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
    async findAccount(_ctx: unknown, id: string) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.com`, email_verified: true, name: id, groups: GROUPS[id] ?? [] };
        },
      };
    },
  });
  handler = provider.callback();

  cpHome = mkdtempSync(join(tmpdir(), "tollgate-cp-people-"));
  cp = await startServerProcess("control-plane", CONTROL_PLANE_MAIN, {
    ...process.env,
    TOLLGATE_HOME: cpHome,
    TOLLGATE_NATS_URL: NATS_URL,
    TOLLGATE_REDIS_URL: REDIS_URL,
    TOLLGATE_REDIS_PREFIX: names.redisPrefix,
    TOLLGATE_AUDIT_STREAM: names.stream,
    TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
    TOLLGATE_API_LISTEN: "127.0.0.1:0",
    TOLLGATE_OIDC_ISSUER: issuer,
    TOLLGATE_OIDC_CLIENT_ID: CLIENT_ID,
    TOLLGATE_OIDC_ROLE_MAP: JSON.stringify([
      { claim: "groups", value: "tollgate-admins", roles: ["admin"] },
      { claim: "groups", value: "tollgate-auditors", roles: ["auditor"] },
      { claim: "groups", value: "ci-agents", roles: ["agent"], connections: ["default"] },
    ]),
  });
  const admin = adminClientFor(cpHome, cp.url);
  for (const name of ["default", "prod"]) {
    await admin.connections.createConnection({
      connection: { name, region: "us-east-1", upstreamAccessKeyId: "AKIDEXAMPLE" },
      upstreamSecretAccessKey: "secret",
    });
  }
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  await new Promise((r) => idp?.close(r));
  idp?.closeAllConnections();
  await cleanupNames(names);
  for (const h of [cpHome, ...homes]) if (h !== undefined) rmSync(h, { recursive: true, force: true });
});

describe("tollgate login (OIDC device flow)", () => {
  let auditor: NodeJS.ProcessEnv;

  it("logs an auditor in: the code is confirmed at the provider, the session lands in session.json (0600)", async () => {
    const { env, result } = await deviceLogin("alice");
    auditor = env;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^logged in as oidc:alice@example\.com \(auditor\) until \d{4}-/);
    const path = join(env.TOLLGATE_HOME as string, "session.json");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const session = JSON.parse(await readFile(path, "utf8")) as { principal: string; roles: string[]; apiUrl: string };
    expect(session).toMatchObject({ principal: "oidc:alice@example.com", roles: ["auditor"], apiUrl: cp.url });
  }, 120_000);

  it("whoami names the person, roles and issuer", async () => {
    const r = await cli(auditor, ["whoami", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const who = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(who).toMatchObject({
      principal: "oidc:alice@example.com",
      roles: ["auditor"],
      kind: "person",
      authMethod: "oidc",
      idpIssuer: issuer,
      idpSubject: "alice",
    });
  });

  it("an auditor queries audit but gets PermissionDenied on CreateConnection", async () => {
    const q = await cli(auditor, ["audit", "query", "--json", "--limit", "5"]);
    expect(q.code, q.stderr).toBe(0);
    const alerts = await cli(auditor, ["audit", "alerts", "--json"]);
    expect(alerts.code, alerts.stderr).toBe(0);
    const c = await cli(auditor, ["connection", "create", "nope", "--region", "us-east-1"]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/PermissionDenied/);
    expect(c.stderr).toMatch(/CreateConnection requires one of the roles: admin/);
    const cred = await cli(auditor, ["credentials", "issue", "--principal", "oidc:alice@example.com"]);
    expect(cred.code).toBe(1);
    expect(cred.stderr).toMatch(/PermissionDenied/);
  });

  it("logout revokes the session at the control plane and removes session.json", async () => {
    const token = (
      JSON.parse(await readFile(join(auditor.TOLLGATE_HOME as string, "session.json"), "utf8")) as { token: string }
    ).token;
    const r = await cli(auditor, ["logout"]);
    expect(r.code, r.stderr).toBe(0);
    expect(() => statSync(join(auditor.TOLLGATE_HOME as string, "session.json"))).toThrow();
    // The old token no longer works anywhere.
    const stale = await cli({ ...auditor, TOLLGATE_SESSION_TOKEN: token }, ["whoami"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/revoked/);
    // Without a session or admin token the CLI says how to log in.
    const none = await cli(auditor, ["whoami"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/not logged in: run `tollgate login`/);
  });

  it("refuses a person whose groups map to no role", async () => {
    const { result } = await deviceLogin("eve");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/has no Tollgate role \(PermissionDenied\)/);
  }, 120_000);
});

describe("tollgate login --browser (authorization code + PKCE, loopback redirect)", () => {
  it("logs an admin in, who may create connections", async () => {
    const { env, result, browser } = await browserLogin("bob");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/logged in as oidc:bob@example\.com \(admin\)/);
    // PKCE S256 was used and the code came back to the CLI's loopback listener.
    const authorize = browser.visited.find((u) => u.includes("code_challenge="));
    expect(authorize).toMatch(/code_challenge_method=S256/);
    expect(browser.visited.some((u) => /^http:\/\/127\.0\.0\.1:\d+\/callback\?code=/.test(u))).toBe(true);
    const c = await cli(env, ["connection", "create", "staging", "--region", "eu-west-1"]);
    expect(c.code, c.stderr).toBe(0);
    const list = await cli(env, ["connection", "list", "--json"]);
    expect(list.stdout).toContain('"staging"');
    const who = await cli(env, ["whoami"]);
    expect(who.stdout).toMatch(/principal: +oidc:bob@example\.com/);
    expect(who.stdout).toMatch(/roles: +admin/);
  }, 120_000);

  it("an agent issues credentials for itself only, on its granted connection only", async () => {
    const { env, result } = await browserLogin("bot");
    expect(result.code, result.stderr).toBe(0);
    const own = await cli(env, ["credentials", "issue", "--principal", "oidc:bot@example.com", "--format", "json"]);
    expect(own.code, own.stderr).toBe(0);
    expect(JSON.parse(own.stdout)).toMatchObject({ principal: "oidc:bot@example.com", connection: "default" });
    const other = await cli(env, ["credentials", "issue", "--principal", "oidc:bob@example.com"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/only issue credentials for itself \(PermissionDenied\)/);
    const prod = await cli(env, [
      "credentials",
      "issue",
      "--principal",
      "oidc:bot@example.com",
      "--connection",
      "prod",
    ]);
    expect(prod.code).toBe(1);
    expect(prod.stderr).toMatch(/may not use connection prod \(PermissionDenied\)/);
    const q = await cli(env, ["audit", "query"]);
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/PermissionDenied/);
  }, 120_000);
});

describe("audit of the control plane's own identity decisions", () => {
  it("logs logins and break-glass use without tokens", () => {
    const logs = cp.lines.join("\n");
    expect(logs).toMatch(/"event":"login","method":"oidc","principal":"oidc:bob@example.com"/);
    expect(logs).toMatch(/"event":"login_refused","method":"oidc","reason":"no_role"/);
    expect(logs).toMatch(/"event":"admin_token_used"/);
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}/);
  });
});
