import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveAdminToken, resolveApiUrl } from "./config.js";

describe("API URL and admin token", () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "tollgate-cli-"));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  it("--api > TOLLGATE_API_URL > dev.json > default", () => {
    expect(resolveApiUrl({ home })).toBe("http://127.0.0.1:8788");
    writeFileSync(join(home, "dev.json"), JSON.stringify({ edgeUrl: "http://e:1", apiUrl: "http://d:2" }));
    expect(resolveApiUrl({ home })).toBe("http://d:2");
    expect(resolveApiUrl({ home, apiUrlEnv: "http://env:3" })).toBe("http://env:3");
    expect(resolveApiUrl({ home, apiUrlEnv: "http://env:3", apiFlag: "127.0.0.1:4" })).toBe("http://127.0.0.1:4");
  });

  it("TOLLGATE_ADMIN_TOKEN > admin.token", () => {
    expect(() => resolveAdminToken({ home })).toThrow(/no admin token/);
    writeFileSync(join(home, "admin.token"), "from-file\n");
    expect(resolveAdminToken({ home })).toBe("from-file");
    expect(resolveAdminToken({ home, adminTokenEnv: "from-env" })).toBe("from-env");
  });
});
