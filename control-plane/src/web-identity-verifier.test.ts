import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, type KeyObject, SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "./logger.js";
import type { TrustRuleRecord } from "./trust-rule-store.js";
import { WebIdentityError, WebIdentityVerifier } from "./web-identity-verifier.js";

/** A JWKS endpoint whose key set the test swaps, counting fetches. */
let server: Server;
let keys: JWK[] = [];
let fetches = 0;
let base: string;

beforeEach(async () => {
  fetches = 0;
  server = createServer((req, res) => {
    if (req.url === "/jwks") {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys }));
    } else if (req.url === "/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks` }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

function rule(overrides: Partial<TrustRuleRecord> = {}): TrustRuleRecord {
  return {
    connection: "default",
    name: "r",
    issuer: base,
    jwksUrl: `${base}/jwks`,
    audiences: ["aud-1"],
    subjectPattern: "",
    conditions: [],
    principalTemplate: "{sub}",
    groupsClaim: "",
    maxTtlSec: 3600,
    createTimeMs: 0,
    ...overrides,
  };
}

async function keyPair(alg: string, kid: string): Promise<{ privateKey: KeyObject; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

function token(key: KeyObject, kid: string, alg = "RS256"): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg, kid })
    .setIssuer(base)
    .setAudience("aud-1")
    .setSubject("agent")
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(key);
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WebIdentityError) return err.code;
    throw err;
  }
  return "accepted";
}

describe("WebIdentityVerifier", () => {
  it("caches the JWKS and picks up a rotated key on an unknown kid, at most once per cooldown", async () => {
    const k1 = await keyPair("RS256", "k1");
    const k2 = await keyPair("ES256", "k2");
    const stranger = await keyPair("RS256", "k3");
    const t1 = await token(k1.privateKey, "k1");
    const t2 = await token(k2.privateKey, "k2", "ES256");
    const t3 = await token(stranger.privateKey, "k3");
    keys = [k1.jwk];
    const verifier = new WebIdentityVerifier({ logger: silentLogger, jwksCooldownMs: 1500 });
    await verifier.verify(t1, rule());
    await verifier.verify(t1, rule());
    expect(fetches).toBe(1);
    // The issuer rotates to k2; k1 is gone.
    keys = [k2.jwk];
    await new Promise((r) => setTimeout(r, 1600));
    const verified = await verifier.verify(t2, rule());
    expect(verified.payload.sub).toBe("agent");
    expect(fetches).toBe(2);
    // An unknown kid within the cooldown does not refetch (no JWKS hammering).
    expect(await refusal(verifier.verify(t3, rule()))).toBe("InvalidIdentityToken");
    expect(fetches).toBe(2);
  });

  it("discovers the JWKS from the issuer when the rule has no JWKS URL", async () => {
    const k1 = await keyPair("PS256", "p1");
    keys = [k1.jwk];
    const verifier = new WebIdentityVerifier({ logger: silentLogger });
    const v = await verifier.verify(await token(k1.privateKey, "p1", "PS256"), rule({ jwksUrl: "" }));
    expect(v.audience).toBe("aud-1");
  });

  it("maps an unreachable JWKS to IDPCommunicationError", async () => {
    const k1 = await keyPair("RS256", "k1");
    const verifier = new WebIdentityVerifier({ logger: silentLogger, fetchTimeoutMs: 1000 });
    const dead = rule({ jwksUrl: "http://127.0.0.1:9/jwks" });
    expect(await refusal(verifier.verify(await token(k1.privateKey, "k1"), dead))).toBe("IDPCommunicationError");
  });

  it("refuses symmetric and unsecured algorithms before any key is fetched", async () => {
    keys = [];
    const verifier = new WebIdentityVerifier({ logger: silentLogger });
    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(base)
      .setAudience("aud-1")
      .setSubject("agent")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("a shared secret of at least 32 bytes!!"));
    expect(await refusal(verifier.verify(hs, rule()))).toBe("InvalidIdentityToken");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"agent"}').toString("base64url")}.`;
    expect(await refusal(verifier.verify(none, rule()))).toBe("InvalidIdentityToken");
    expect(fetches).toBe(0);
  });
});
