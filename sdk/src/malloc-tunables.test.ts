import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { EDGE_MALLOC_TUNABLE, hasMallocTrimThreshold, withEdgeMallocTunables } from "./malloc-tunables.js";

describe("withEdgeMallocTunables", () => {
  it("adds the trim threshold when GLIBC_TUNABLES is unset or empty", () => {
    expect(withEdgeMallocTunables({ A: "1" })).toEqual({ A: "1", GLIBC_TUNABLES: EDGE_MALLOC_TUNABLE });
    expect(withEdgeMallocTunables({ GLIBC_TUNABLES: "" }).GLIBC_TUNABLES).toBe(EDGE_MALLOC_TUNABLE);
  });

  it("keeps other tunables and appends ours", () => {
    const env = withEdgeMallocTunables({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" });
    expect(env.GLIBC_TUNABLES).toBe(`glibc.malloc.arena_max=2:${EDGE_MALLOC_TUNABLE}`);
  });

  it("leaves an operator's own trim threshold alone and does not mutate its input", () => {
    const input = { GLIBC_TUNABLES: "glibc.malloc.top_pad=0:glibc.malloc.trim_threshold=1048576" };
    const out = withEdgeMallocTunables(input);
    expect(out.GLIBC_TUNABLES).toBe("glibc.malloc.top_pad=0:glibc.malloc.trim_threshold=1048576");
    const plain: Record<string, string | undefined> = { X: "y" };
    withEdgeMallocTunables(plain);
    expect(plain).toEqual({ X: "y" });
  });

  it("recognises only a trim threshold setting", () => {
    expect(hasMallocTrimThreshold(undefined)).toBe(false);
    expect(hasMallocTrimThreshold("glibc.malloc.mmap_threshold=4096")).toBe(false);
    expect(hasMallocTrimThreshold(`glibc.malloc.arena_max=2:${EDGE_MALLOC_TUNABLE}`)).toBe(true);
  });

  it("reaches a child process started with it", () => {
    const env = withEdgeMallocTunables({ ...process.env, GLIBC_TUNABLES: undefined });
    const out = execFileSync(process.execPath, ["-e", "process.stdout.write(process.env.GLIBC_TUNABLES ?? '')"], {
      env,
    }).toString();
    expect(out).toBe(EDGE_MALLOC_TUNABLE);
  });
});
