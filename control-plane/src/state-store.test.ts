import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TollgateError } from "@tollgate/sdk";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashToken, loadOrCreateState, statePaths } from "./state-store.js";

describe("loadOrCreateState", () => {
  let home: string;
  beforeEach(async () => {
    home = join(await mkdtemp(join(tmpdir(), "tollgate-state-")), "home");
  });
  afterEach(async () => {
    await rm(join(home, ".."), { recursive: true, force: true });
  });

  it("creates private state and tokens once, then reuses them", async () => {
    const first = await loadOrCreateState(home);
    expect(first.created).toBe(true);
    const paths = statePaths(home);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    expect((await stat(paths.dir)).mode & 0o777).toBe(0o700);
    for (const p of [paths.state, paths.adminToken, paths.edgeToken]) {
      expect((await stat(p)).mode & 0o777).toBe(0o600);
    }
    const admin = (await readFile(paths.adminToken, "utf8")).trim();
    const edge = (await readFile(paths.edgeToken, "utf8")).trim();
    expect(Buffer.from(hashToken(admin)).equals(Buffer.from(first.state.adminTokenSha256))).toBe(true);
    expect(Buffer.from(hashToken(edge)).equals(Buffer.from(first.state.edgeTokenSha256))).toBe(true);
    expect(first.state.dataKey.length).toBe(32);
    expect(first.state.credentialKeys[0]?.key.length).toBe(32);

    const json = JSON.parse(await readFile(paths.state, "utf8")) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual(
      ["adminTokenSha256", "createdAt", "credentialKeys", "dataKey", "edgeTokenSha256", "version"].sort(),
    );

    const tokenMtime = (await stat(paths.adminToken)).mtimeMs;
    const second = await loadOrCreateState(home);
    expect(second.created).toBe(false);
    expect(second.state).toEqual(first.state);
    expect((await stat(paths.adminToken)).mtimeMs).toBe(tokenMtime);
    expect((await readFile(paths.adminToken, "utf8")).trim()).toBe(admin);
  });

  it("refuses a corrupt state file with ERR_CONFIG naming the file", async () => {
    await loadOrCreateState(home);
    const { state } = statePaths(home);
    await writeFile(state, "{");
    await expect(loadOrCreateState(home)).rejects.toSatisfy(
      (err) => err instanceof TollgateError && err.code === "ERR_CONFIG" && err.message.includes(state),
    );
    await writeFile(state, JSON.stringify({ version: 1, credentialKeys: [], dataKey: "" }));
    await expect(loadOrCreateState(home)).rejects.toThrow(/credentialKeys/);
  });
});
