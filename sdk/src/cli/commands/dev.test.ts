import { describe, expect, it } from "vitest";
import { chooseUpstream } from "./dev.js";

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
