/**
 * glibc malloc settings for edge processes.
 *
 * A proxy streaming large bodies allocates a 64 KiB buffer per socket read and frees them in
 * bursts, when V8 collects their JS wrappers. With glibc's default trim threshold (128 KiB,
 * raised dynamically only up to twice the mmap threshold) each burst leaves a large free block at
 * the top of the heap that glibc hands back to the kernel (`brk` shrinks), and the next reads
 * fault the same pages in again, zero-filled. On the 2-core bench machine that churn cost
 * 1–2 CPU-seconds per GiB proxied (1 GiB GET: 2.4–4.2 CPU-s without, 1.9–2.4 with a 32 MiB
 * threshold; `bench/README.md`). Keeping up to 32 MiB of free heap stops it.
 *
 * Each malloc arena keeps its own free heap, and glibc gives every thread that allocates
 * (libuv's pool, V8's GC helpers, the digest worker) an arena of its own, up to 8 per core; two
 * arenas keep the retained memory down (peak RSS of a 1 GiB transfer 153–160 → 144–152 MiB,
 * same CPU).
 *
 * glibc reads `GLIBC_TUNABLES` only when a process starts, so whatever launches an edge process
 * sets it: `tollgate dev`, the edge primary for its workers, the systemd unit and the bench.
 */

/** The tunables every edge process should start with. */
export const EDGE_MALLOC_TUNABLES: readonly string[] = [
  "glibc.malloc.trim_threshold=33554432",
  "glibc.malloc.arena_max=2",
];

/** {@link EDGE_MALLOC_TUNABLES} as one `GLIBC_TUNABLES` value. */
export const EDGE_GLIBC_TUNABLES = EDGE_MALLOC_TUNABLES.join(":");

const keyOf = (tunable: string): string => tunable.slice(0, tunable.indexOf("=") + 1);

/** The edge tunables whose setting `glibcTunables` lacks (an operator's own value counts as set). */
export function missingEdgeMallocTunables(glibcTunables: string | undefined): string[] {
  const set = (glibcTunables ?? "").split(":");
  return EDGE_MALLOC_TUNABLES.filter((t) => !set.some((s) => s.startsWith(keyOf(t))));
}

/**
 * `env` with the missing {@link EDGE_MALLOC_TUNABLES} appended to `GLIBC_TUNABLES`, keeping the
 * tunables already there; an operator's own value for one of ours wins.
 */
export function withEdgeMallocTunables<T extends Record<string, string | undefined>>(env: T): T {
  const current = env.GLIBC_TUNABLES;
  const missing = missingEdgeMallocTunables(current);
  if (missing.length === 0) return env;
  return { ...env, GLIBC_TUNABLES: [...(current ? [current] : []), ...missing].join(":") };
}
