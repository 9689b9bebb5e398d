import { describe, expect, it } from "vitest";
import { chooseUpstream, formatProxyExports } from "./dev.js";

describe("chooseUpstream", () => {
  it("explicit flags win", () => {
    expect(
      chooseUpstream(
        { endpoint: "http://127.0.0.1:5000", accessKeyId: "A", secretAccessKey: "S" },
        { accessKeyId: "X", secretAccessKey: "Y" },
      ),
    ).toEqual({
      kind: "explicit",
      endpoint: "http://127.0.0.1:5000",
      accessKeyId: "A",
      secretAccessKey: "S",
      sessionToken: "",
    });
  });

  it("then AWS credentials from the environment (real AWS)", () => {
    expect(chooseUpstream({}, { accessKeyId: "X", secretAccessKey: "Y", sessionToken: "T" })).toEqual({
      kind: "aws",
      endpoint: "",
      accessKeyId: "X",
      secretAccessKey: "Y",
      sessionToken: "T",
    });
  });

  it("else moto", () => {
    expect(chooseUpstream({}, { accessKeyId: "X" })).toEqual({ kind: "moto" });
  });

  it("rejects partial upstream flags", () => {
    expect(() => chooseUpstream({ endpoint: "http://x" }, {})).toThrow(/must be given together/);
  });
});

describe("formatProxyExports", () => {
  it("prints the proxy and CA exports, quoted for the shell", () => {
    expect(formatProxyExports("http://127.0.0.1:8789", "/home/a b/ca.pem")).toBe(
      [
        "# HTTPS_PROXY mode (default AWS endpoints; unset AWS_ENDPOINT_URL to use it):",
        "export HTTPS_PROXY=http://127.0.0.1:8789",
        "export AWS_CA_BUNDLE='/home/a b/ca.pem'",
        "export NODE_EXTRA_CA_CERTS='/home/a b/ca.pem'",
        "",
      ].join("\n"),
    );
  });
});
