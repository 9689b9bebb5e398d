import { describe, expect, it } from "vitest";
import { claimStrings, claimValue, globToRegExp, MissingClaimError, renderPrincipalTemplate } from "./claim-match.js";

describe("claim matching", () => {
  it("globs: * and ? only, everything else literal", () => {
    expect(globToRegExp("system:serviceaccount:agents:*").test("system:serviceaccount:agents:builder")).toBe(true);
    expect(globToRegExp("system:serviceaccount:agents:*").test("system:serviceaccount:agentsX:builder")).toBe(false);
    expect(globToRegExp("repo:acme/app:ref:refs/heads/main").test("repo:acme/app:ref:refs/heads/main")).toBe(true);
    expect(globToRegExp("a.b").test("aXb")).toBe(false);
    expect(globToRegExp("v?").test("v1")).toBe(true);
    expect(globToRegExp("v?").test("v12")).toBe(false);
    expect(globToRegExp("(x)+[y]").test("(x)+[y]")).toBe(true);
  });

  it("reads dotted claims, top-level names with dots first", () => {
    const payload = { "kubernetes.io": { namespace: "agents", serviceaccount: { name: "builder" } }, a: { b: 1 } };
    expect(claimValue(payload, "kubernetes.io.namespace")).toBe("agents");
    expect(claimValue(payload, "kubernetes.io.serviceaccount.name")).toBe("builder");
    expect(claimValue(payload, "a.b")).toBe(1);
    expect(claimValue(payload, "a.c")).toBeUndefined();
    expect(claimStrings(["x", 2, true, { y: 1 }, ["z"]])).toEqual(["x", "2", "true"]);
  });

  it("renders principal templates and refuses missing claims", () => {
    expect(renderPrincipalTemplate("k8s:{sub}", { sub: "system:serviceaccount:a:b" })).toBe(
      "k8s:system:serviceaccount:a:b",
    );
    expect(renderPrincipalTemplate("ci-{repository_owner}", { repository_owner: "acme" })).toBe("ci-acme");
    expect(() => renderPrincipalTemplate("{email}", { sub: "x" })).toThrow(MissingClaimError);
    expect(() => renderPrincipalTemplate("{groups}", { groups: ["a"] })).toThrow(MissingClaimError);
  });
});
