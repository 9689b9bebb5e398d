import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveBearerToken } from "./config.js";
import { readSessionFile, removeSessionFile, type SessionFile, writeSessionFile } from "./session-file.js";

describe("session.json and the bearer token of API commands", () => {
  let home: string;
  const api = "http://127.0.0.1:8788";
  const session = (expiresAt: string, apiUrl = api): SessionFile => ({
    apiUrl,
    token: "session-token",
    principal: "oidc:alice@example.com",
    roles: ["auditor"],
    authMethod: "oidc",
    expiresAt,
  });
  beforeEach(() => {
    home = join(mkdtempSync(join(tmpdir(), "tollgate-session-")), "home-not-created-yet");
  });
  afterEach(() => rmSync(join(home, ".."), { recursive: true, force: true }));

  it("writes 0600 (creating TOLLGATE_HOME), reads back, removes", () => {
    writeSessionFile(home, session("2099-01-01T00:00:00.000Z"));
    expect(statSync(join(home, "session.json")).mode & 0o777).toBe(0o600);
    expect(readSessionFile(home)?.principal).toBe("oidc:alice@example.com");
    expect(removeSessionFile(home)).toBe(true);
    expect(readSessionFile(home)).toBeUndefined();
    expect(removeSessionFile(home)).toBe(false);
  });

  it("TOLLGATE_SESSION_TOKEN > TOLLGATE_ADMIN_TOKEN > session.json > admin.token", () => {
    expect(() => resolveBearerToken({ home })).toThrow(/not logged in: run `tollgate login`/);
    writeSessionFile(home, session("2099-01-01T00:00:00.000Z"));
    writeFileSync(join(home, "admin.token"), "break-glass\n");
    expect(resolveBearerToken({ home })).toBe("session-token");
    expect(resolveBearerToken({ home, adminTokenEnv: "admin-env" })).toBe("admin-env");
    expect(resolveBearerToken({ home, adminTokenEnv: "admin-env", sessionTokenEnv: "session-env" })).toBe(
      "session-env",
    );
    removeSessionFile(home);
    expect(resolveBearerToken({ home })).toBe("break-glass");
  });

  it("ignores a session of another control plane; an expired one is an error, not a switch to break-glass", () => {
    writeSessionFile(home, session("2099-01-01T00:00:00.000Z", "http://other:8788"));
    writeFileSync(join(home, "admin.token"), "break-glass\n");
    expect(resolveBearerToken({ home })).toBe("break-glass");
    writeSessionFile(home, session("2020-01-01T00:00:00.000Z"));
    expect(() => resolveBearerToken({ home })).toThrow(/expired at 2020-01-01T00:00:00.000Z: run `tollgate login`/);
  });
});
