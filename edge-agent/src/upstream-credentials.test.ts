import { describe, expect, it } from "vitest";
import type { EdgeConnectionConfig } from "./edge-config.js";
import { silentLogger } from "./logger.js";
import { stsSessionName, UpstreamCredentialResolver, UpstreamCredentialsError } from "./upstream-credentials.js";

function connection(over: Partial<EdgeConnectionConfig> = {}): EdgeConnectionConfig {
  return {
    name: "default",
    region: "us-east-1",
    upstreamEndpoint: "",
    credentials: { accessKeyId: "AKIASTATIC", secretAccessKey: "s" },
    accountId: "123456789012",
    credentialSource: "static",
    roleArn: "",
    externalId: "",
    ...over,
  };
}

describe("stsSessionName", () => {
  it("keeps STS's [\\w+=,.@-] characters, replaces others, caps at 64 and pads to 2", () => {
    expect(stsSessionName("ci-bot")).toBe("ci-bot");
    expect(stsSessionName("agent:ci")).toBe("agent-ci");
    expect(stsSessionName("oidc:alice@example.com")).toBe("oidc-alice@example.com");
    expect(stsSessionName("a")).toBe("a-");
    expect(stsSessionName("x".repeat(100))).toHaveLength(64);
    expect(stsSessionName("a b/c")).toMatch(/^[\w+=,.@-]{2,64}$/);
  });
});

describe("UpstreamCredentialResolver", () => {
  it("static connections sign with their own keys (the same object, so signers stay cached)", async () => {
    const c = connection();
    const r = await new UpstreamCredentialResolver({ logger: silentLogger }).resolve(c, "p");
    expect(r.credentials).toBe(c.credentials);
    expect(r.identity).toMatchObject({ source: "static", accessKeyId: "AKIASTATIC", roleArn: "" });
  });

  it("edge-sourced connections sign with the edge's credentials, and are refused on an edge without any", async () => {
    const edgeCredentials = { accessKeyId: "AKIAEDGE", secretAccessKey: "e" };
    const c = connection({ credentialSource: "edge", credentials: { accessKeyId: "", secretAccessKey: "" } });
    const r = await new UpstreamCredentialResolver({ logger: silentLogger, edgeCredentials }).resolve(c, "p");
    expect(r.credentials).toBe(edgeCredentials);
    expect(r.identity).toMatchObject({ source: "edge", accessKeyId: "AKIAEDGE" });
    await expect(new UpstreamCredentialResolver({ logger: silentLogger }).resolve(c, "p")).rejects.toBeInstanceOf(
      UpstreamCredentialsError,
    );
  });

  it("a role that cannot be assumed (STS unreachable) is an error, never a fallback to the base keys", async () => {
    const c = connection({
      roleArn: "arn:aws:iam::123456789012:role/r",
      upstreamEndpoint: "http://127.0.0.1:1",
    });
    const resolver = new UpstreamCredentialResolver({ logger: silentLogger, timeoutMs: 2_000 });
    await expect(resolver.resolve(c, "p")).rejects.toThrow(/AssumeRole .* failed/);
  });
});
