import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signCheckpoint, verifyCheckpoint } from "@tollgate/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { EdgeSigningKeyError, loadOrCreateEdgeSigningKey } from "./edge-signing-key.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("loadOrCreateEdgeSigningKey", () => {
  it("creates a 0600 key once and loads the same key afterwards", async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-key-"));
    dirs.push(dir);
    const file = join(dir, "edge", "signing-key.json");
    const a = await loadOrCreateEdgeSigningKey(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const b = await loadOrCreateEdgeSigningKey(file);
    expect(b).toEqual(a);
    expect(a.keyId).toMatch(/^[0-9a-f]{16}$/);
    const cp = signCheckpoint(b, { edge: "e1", sequence: 3n, hash: "ab" });
    expect(verifyCheckpoint(cp, a.publicKeyPem)).toBe(true);
    expect(fs.readdirSync(join(dir, "edge"))).toEqual(["signing-key.json"]);
  });

  it("refuses a key file others can read, or one whose id does not match", async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "tollgate-key-"));
    dirs.push(dir);
    const file = join(dir, "signing-key.json");
    const key = await loadOrCreateEdgeSigningKey(file);
    fs.chmodSync(file, 0o644);
    await expect(loadOrCreateEdgeSigningKey(file)).rejects.toBeInstanceOf(EdgeSigningKeyError);
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, JSON.stringify({ ...key, keyId: "0000000000000000" }));
    await expect(loadOrCreateEdgeSigningKey(file)).rejects.toThrow(/not a valid edge signing key/);
  });
});
