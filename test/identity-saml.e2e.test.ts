/**
 * SAML 2.0 SSO for people: `samlify` plays the IdP (test key pair made with openssl), the
 * control plane is the service provider (node-saml). `tollgate login --saml` gets a session
 * through the browser round trip; hostile responses are each refused with a reason and logged
 * without assertion contents: unsigned assertion, replayed response and replayed assertion id,
 * XML signature wrapping, wrong audience, wrong recipient, expired.
 */

import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as samlify from "samlify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, cleanupNames, NATS_URL, REDIS_URL, runProcess, uniqueNames } from "./support/dev-instance.js";
import { FormBrowser, parseForm } from "./support/form-browser.js";
import { CONTROL_PLANE_MAIN, type ServerProcess, startServerProcess } from "./support/tollgate-processes.js";

// samlify wants an XML schema validator; the IdP side of this test trusts its own XML. The SP
// (node-saml in the control plane) verifies signatures itself.
samlify.setSchemaValidator({ validate: async () => "skipped" });

const SP_ENTITY = "urn:tollgate:test-sp";
const IDP_ENTITY = "urn:test-idp";
const names = uniqueNames();

let tmp: string;
let keyPem: string;
let certPem: string;
let idpServer: Server;
let idpUrl: string;
let cp: ServerProcess;
let acsUrl: string;
let idp: ReturnType<typeof samlify.IdentityProvider>;
let sp: ReturnType<typeof samlify.ServiceProvider>;
/** AuthnRequests the IdP received, newest last. */
const requests: { query: Record<string, string>; info: { extract: { request: { id: string } } } }[] = [];

interface ResponseOptions {
  nameId?: string;
  groups?: string[];
  audience?: string;
  recipient?: string;
  destination?: string;
  assertionId?: string;
  notBefore?: Date;
  notOnOrAfter?: Date;
  inResponseTo?: string;
  signAssertion?: boolean;
}

function isoZ(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A login response from the IdP for the newest AuthnRequest, built and signed by samlify. */
async function idpResponse(o: ResponseOptions = {}): Promise<string> {
  const request = requests.at(-1);
  if (request === undefined) throw new Error("no AuthnRequest yet");
  const now = new Date();
  const values: Record<string, string> = {
    ID: `_${randomUUID()}`,
    AssertionID: o.assertionId ?? `_${randomUUID()}`,
    Destination: o.destination ?? acsUrl,
    Audience: o.audience ?? SP_ENTITY,
    SubjectRecipient: o.recipient ?? acsUrl,
    Issuer: IDP_ENTITY,
    IssueInstant: isoZ(now),
    StatusCode: "urn:oasis:names:tc:SAML:2.0:status:Success",
    ConditionsNotBefore: isoZ(o.notBefore ?? new Date(now.getTime() - 10_000)),
    ConditionsNotOnOrAfter: isoZ(o.notOnOrAfter ?? new Date(now.getTime() + 300_000)),
    SubjectConfirmationDataNotOnOrAfter: isoZ(o.notOnOrAfter ?? new Date(now.getTime() + 300_000)),
    NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    NameID: o.nameId ?? "carol@example.com",
    InResponseTo: o.inResponseTo ?? request.info.extract.request.id,
    AuthnStatement: `<saml:AuthnStatement AuthnInstant="${isoZ(now)}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
    AttributeStatement: `<saml:AttributeStatement><saml:Attribute Name="groups">${(o.groups ?? ["tollgate-auditors"])
      .map((g) => `<saml:AttributeValue xsi:type="xs:string">${g}</saml:AttributeValue>`)
      .join("")}</saml:Attribute></saml:AttributeStatement>`,
  };
  const target = o.signAssertion === false ? unsignedSp : sp;
  const res = (await idp.createLoginResponse(
    target,
    request.info as never,
    "post",
    { email: values.NameID },
    {
      relayState: request.query.RelayState ?? "",
      customTagReplacement: (template: string) => ({
        id: values.ID as string,
        context: template.replace(/\{(\w+)\}/g, (_m, k: string) => values[k] ?? ""),
      }),
    },
  )) as { context: string };
  return Buffer.from(res.context, "base64").toString("utf8");
}
let unsignedSp: ReturnType<typeof samlify.ServiceProvider>;

/** Starts an SP-initiated login at the control plane; the IdP records the AuthnRequest. */
async function startLogin(browser = new FormBrowser(), query = ""): Promise<FormBrowser> {
  const before = requests.length;
  const page = await browser.get(`${cp.url}/saml/login${query}`);
  expect(page.status, page.html).toBe(200);
  expect(requests.length).toBe(before + 1);
  return browser;
}

async function postToAcs(browser: FormBrowser, xml: string, relayState = requests.at(-1)?.query.RelayState ?? "") {
  return await browser.request(acsUrl, {
    method: "POST",
    body: new URLSearchParams({ SAMLResponse: Buffer.from(xml, "utf8").toString("base64"), RelayState: relayState }),
  });
}

/** Starts a login, answers it with `build()`'s response, expects a refusal logged with `reason`. */
async function refused(build: () => Promise<string>, reason: string): Promise<void> {
  const b = await startLogin();
  const before = refusals(reason);
  const page = await postToAcs(b, await build());
  expect(page.status, page.html).toBe(403);
  expect(page.html).toMatch(/SAML login refused/);
  expect(page.html).not.toContain("session-token");
  await expectLogged(reason, before);
}

/** How many refusals with this reason the control plane logged so far. */
function refusals(reason: string): number {
  const needle = `"event":"login_refused","method":"saml","reason":"${reason}"`;
  return cp.lines.filter((l) => l.includes(needle)).length;
}

async function expectLogged(reason: string, before: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (refusals(reason) <= before) {
    if (Date.now() > deadline)
      throw new Error(
        `no login_refused ${reason} in the log:\n${cp.lines.filter((l) => l.includes("login_refused")).join("\n")}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tollgate-saml-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-sha256",
      "-days",
      "2",
      "-subj",
      "/CN=tollgate-test-idp",
      "-keyout",
      join(tmp, "idp-key.pem"),
      "-out",
      join(tmp, "idp-cert.pem"),
    ],
    { stdio: "ignore" },
  );
  keyPem = readFileSync(join(tmp, "idp-key.pem"), "utf8");
  certPem = readFileSync(join(tmp, "idp-cert.pem"), "utf8");

  idpServer = createServer((req, res) => {
    const url = new URL(req.url ?? "/", idpUrl);
    if (url.pathname !== "/sso") {
      res.writeHead(404).end();
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    idp
      .parseLoginRequest(sp, "redirect", { query, octetString: "" } as never)
      .then((info) => {
        requests.push({ query, info: info as never });
        res.writeHead(200, { "content-type": "text/plain" }).end("authenticated");
      })
      .catch((err: unknown) => {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
      });
  });
  await new Promise<void>((r) => idpServer.listen(0, "127.0.0.1", r));
  idpUrl = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;

  cp = await startServerProcess("control-plane", CONTROL_PLANE_MAIN, {
    ...process.env,
    TOLLGATE_HOME: join(tmp, "cp"),
    TOLLGATE_NATS_URL: NATS_URL,
    TOLLGATE_REDIS_URL: REDIS_URL,
    TOLLGATE_REDIS_PREFIX: names.redisPrefix,
    TOLLGATE_AUDIT_STREAM: names.stream,
    TOLLGATE_AUDIT_SUBJECT_PREFIX: names.subjectPrefix,
    TOLLGATE_API_LISTEN: "127.0.0.1:0",
    TOLLGATE_SAML_ENTRY_POINT: `${idpUrl}/sso`,
    TOLLGATE_SAML_IDP_CERT_FILE: join(tmp, "idp-cert.pem"),
    TOLLGATE_SAML_IDP_ISSUER: IDP_ENTITY,
    TOLLGATE_SAML_SP_ENTITY_ID: SP_ENTITY,
    TOLLGATE_SAML_ROLE_MAP: JSON.stringify([
      { claim: "groups", value: "tollgate-admins", roles: ["admin"] },
      { claim: "groups", value: "tollgate-auditors", roles: ["auditor"] },
    ]),
  });
  acsUrl = `${cp.url}/saml/acs`;

  const idpSettings = {
    entityID: IDP_ENTITY,
    privateKey: keyPem,
    signingCert: certPem,
    wantAuthnRequestsSigned: false,
    singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: `${idpUrl}/sso` }],
    nameIDFormat: ["urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"],
  };
  idp = samlify.IdentityProvider(idpSettings);
  const spSettings = {
    entityID: SP_ENTITY,
    authnRequestsSigned: false,
    assertionConsumerService: [{ Binding: samlify.Constants.namespace.binding.post, Location: acsUrl }],
  };
  sp = samlify.ServiceProvider({ ...spSettings, wantAssertionsSigned: true });
  // Same SP, but samlify then signs only the Response, not the Assertion.
  unsignedSp = samlify.ServiceProvider({ ...spSettings, wantAssertionsSigned: false, wantMessageSigned: true });
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  await new Promise((r) => idpServer?.close(r));
  await cleanupNames(names);
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe("SAML SSO", () => {
  it("tollgate login --saml: IdP round trip, session handed to the CLI's loopback listener", async () => {
    const home = join(tmp, "carol");
    const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_HOME: home, TOLLGATE_API_URL: cp.url };
    delete env.TOLLGATE_ADMIN_TOKEN;
    const child = spawn(process.execPath, [CLI, "login", "--saml"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number>((r) => child.on("close", (c) => r(c ?? -1)));
    const deadline = Date.now() + 30_000;
    let m = /open this URL in a browser:\n(\S+)/.exec(stderr);
    while (m === null) {
      if (Date.now() > deadline) throw new Error(`no URL from the CLI: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
      m = /open this URL in a browser:\n(\S+)/.exec(stderr);
    }
    const browser = await startLogin(new FormBrowser(), new URL(m[1] as string).search);
    const acsPage = await postToAcs(
      browser,
      await idpResponse({ nameId: "carol@example.com", groups: ["tollgate-admins"] }),
    );
    expect(acsPage.status, acsPage.html).toBe(200);
    // The page posts the session to the loopback listener (a browser does it by script).
    const form = parseForm(acsPage);
    expect(form.action).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const done = await browser.submit(acsPage);
    expect(done.html).toContain("login complete");
    expect(await exited, `${stderr}\n${cp.lines.slice(-5).join("\n")}`).toBe(0);
    expect(stdout).toMatch(/logged in as saml:carol@example\.com \(admin\)/);
    const who = await runProcess(process.execPath, [CLI, "whoami", "--json"], env);
    expect(JSON.parse(who.stdout)).toMatchObject({
      principal: "saml:carol@example.com",
      roles: ["admin"],
      authMethod: "saml",
      idpIssuer: IDP_ENTITY,
    });
    const create = await runProcess(process.execPath, [CLI, "connection", "create", "saml-made"], env);
    expect(create.code, create.stderr).toBe(0);
  }, 120_000);

  it("without a CLI the page shows the session token, and it works as a bearer", async () => {
    const browser = await startLogin();
    const page = await postToAcs(browser, await idpResponse({ nameId: "dave@example.com" }));
    expect(page.status).toBe(200);
    const token = /<pre id="session-token">([^<]+)<\/pre>/.exec(page.html)?.[1];
    expect(token).toBeDefined();
    const who = await runProcess(process.execPath, [CLI, "whoami", "--json"], {
      ...process.env,
      TOLLGATE_HOME: join(tmp, "dave"),
      TOLLGATE_API_URL: cp.url,
      TOLLGATE_SESSION_TOKEN: token,
    });
    expect(JSON.parse(who.stdout)).toMatchObject({ principal: "saml:dave@example.com", roles: ["auditor"] });
  });

  it("refuses an unsigned assertion (even inside a signed response)", async () => {
    await refused(() => idpResponse({ signAssertion: false, groups: ["tollgate-admins"] }), "bad_signature");
  });

  it("refuses a response with every signature stripped", async () => {
    await refused(async () => {
      const xml = (await idpResponse()).replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, "");
      expect(xml).not.toContain("Signature");
      return xml;
    }, "bad_signature");
  });

  it("refuses a replayed response (the request it answers is used up)", async () => {
    const browser = await startLogin();
    const xml = await idpResponse();
    expect((await postToAcs(browser, xml)).status).toBe(200);
    const before = refusals("unsolicited_or_replayed");
    const again = await postToAcs(browser, xml);
    expect(again.status).toBe(403);
    await expectLogged("unsolicited_or_replayed", before);
  });

  it("refuses an assertion id seen before, even answering a new request", async () => {
    const assertionId = `_${randomUUID()}`;
    await startLogin();
    expect((await postToAcs(new FormBrowser(), await idpResponse({ assertionId }))).status).toBe(200);
    await refused(() => idpResponse({ assertionId }), "replayed");
  });

  it("refuses XML signature wrapping: a forged assertion next to the signed one", async () => {
    await refused(async () => {
      const signed = await idpResponse({ nameId: "carol@example.com", groups: ["tollgate-auditors"] });
      const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(signed)?.[0] as string;
      const forged = assertion
        .replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, "")
        .replace(/ID="[^"]+"/, `ID="_forged"`)
        .replace("carol@example.com", "mallory@example.com")
        .replace("tollgate-auditors", "tollgate-admins");
      return signed.replace(assertion, `${forged}${assertion}`);
    }, "signature_wrapping");
  });

  it("refuses XML signature wrapping: the signed assertion hidden inside a forged one", async () => {
    await refused(async () => {
      const signed = await idpResponse({ nameId: "carol@example.com", groups: ["tollgate-auditors"] });
      const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(signed)?.[0] as string;
      const forged = assertion
        .replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, "")
        .replace(/ID="[^"]+"/, `ID="_forged"`)
        .replace("carol@example.com", "mallory@example.com")
        .replace("tollgate-auditors", "tollgate-admins")
        .replace("</saml:Subject>", `</saml:Subject><saml:Advice>${assertion}</saml:Advice>`);
      return signed.replace(assertion, forged);
    }, "bad_signature");
  });

  it("refuses a wrong audience", async () => {
    await refused(() => idpResponse({ audience: "urn:someone-else" }), "wrong_audience");
  });

  it("refuses a wrong recipient", async () => {
    await refused(() => idpResponse({ recipient: "https://evil.example.com/acs" }), "wrong_recipient");
  });

  it("refuses an expired assertion", async () => {
    const hourAgo = new Date(Date.now() - 3600_000);
    await refused(
      () => idpResponse({ notBefore: new Date(hourAgo.getTime() - 600_000), notOnOrAfter: hourAgo }),
      "expired",
    );
  });

  it("never logs assertion contents", () => {
    const logs = cp.lines.join("\n");
    expect(logs).not.toContain("mallory");
    expect(logs).not.toContain("PHNhbWxw"); // base64 of "<samlp"
    expect(logs).not.toContain("<saml");
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}/);
  });
});
