import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  EDGE_GLIBC_TUNABLES,
  EDGE_MALLOC_TUNABLES,
  missingEdgeMallocTunables,
  withEdgeMallocTunables,
} from "./malloc-tunables.js";

describe("withEdgeMallocTunables", () => {
  it("adds the trim threshold and the arena cap when GLIBC_TUNABLES is unset or empty", () => {
    expect(EDGE_GLIBC_TUNABLES).toBe("glibc.malloc.trim_threshold=33554432:glibc.malloc.arena_max=2");
    expect(withEdgeMallocTunables({ A: "1" })).toEqual({ A: "1", GLIBC_TUNABLES: EDGE_GLIBC_TUNABLES });
    expect(withEdgeMallocTunables({ GLIBC_TUNABLES: "" }).GLIBC_TUNABLES).toBe(EDGE_GLIBC_TUNABLES);
  });

  it("keeps other tunables and appends ours", () => {
    const env = withEdgeMallocTunables({ GLIBC_TUNABLES: "glibc.malloc.tcache_count=0" });
    expect(env.GLIBC_TUNABLES).toBe(`glibc.malloc.tcache_count=0:${EDGE_GLIBC_TUNABLES}`);
  });

  it("leaves an operator's own values alone, adds only what is missing, and does not mutate its input", () => {
    const input = { GLIBC_TUNABLES: "glibc.malloc.top_pad=0:glibc.malloc.trim_threshold=1048576" };
    expect(withEdgeMallocTunables(input).GLIBC_TUNABLES).toBe(
      "glibc.malloc.top_pad=0:glibc.malloc.trim_threshold=1048576:glibc.malloc.arena_max=2",
    );
    const both = { GLIBC_TUNABLES: "glibc.malloc.arena_max=8:glibc.malloc.trim_threshold=0" };
    expect(withEdgeMallocTunables(both)).toBe(both);
    const plain: Record<string, string | undefined> = { X: "y" };
    withEdgeMallocTunables(plain);
    expect(plain).toEqual({ X: "y" });
  });

  it("names what is missing by key, not by value", () => {
    expect(missingEdgeMallocTunables(undefined)).toEqual([...EDGE_MALLOC_TUNABLES]);
    expect(missingEdgeMallocTunables("glibc.malloc.mmap_threshold=4096")).toEqual([...EDGE_MALLOC_TUNABLES]);
    expect(missingEdgeMallocTunables("glibc.malloc.arena_max=4")).toEqual(["glibc.malloc.trim_threshold=33554432"]);
    expect(missingEdgeMallocTunables(EDGE_GLIBC_TUNABLES)).toEqual([]);
  });

  it("reaches a child process started with it", () => {
    const env = withEdgeMallocTunables({ ...process.env, GLIBC_TUNABLES: undefined });
    const out = execFileSync(process.execPath, ["-e", "process.stdout.write(process.env.GLIBC_TUNABLES ?? '')"], {
      env,
    }).toString();
    expect(out).toBe(EDGE_GLIBC_TUNABLES);
  });
});
