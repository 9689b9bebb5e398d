/**
 * glibc malloc settings for edge processes.
 *
 * A proxy streaming large bodies allocates a 64 KiB buffer per socket read and frees them in
 * bursts, when V8 collects their JS wrappers. With glibc's default trim threshold (128 KiB,
 * raised dynamically only up to twice the mmap threshold) each burst leaves a large free block at
 * the top of the heap that glibc hands back to the kernel (`brk` shrinks), and the next reads
 * fault the same pages in again, zero-filled. On the 2-core bench machine that churn cost
 * 1–2 CPU-seconds per GiB proxied (1 GiB GET: 2.9–4.2 CPU-s without, 1.9–2.2 with a 32 MiB
 * threshold; `bench/README.md`). Keeping up to 32 MiB of free heap stops it, for a few MiB of
 * peak RSS.
 *
 * glibc reads `GLIBC_TUNABLES` only when a process starts, so whatever launches an edge process
 * sets it: `tollgate dev`, the edge primary for its workers, the systemd unit and the bench.
 */

/** The tunable every edge process should start with. */
export const EDGE_MALLOC_TUNABLE = "glibc.malloc.trim_threshold=33554432";

const TRIM_THRESHOLD_KEY = "glibc.malloc.trim_threshold=";

/** True when `GLIBC_TUNABLES` already sets a malloc trim threshold (ours or the operator's). */
export function hasMallocTrimThreshold(glibcTunables: string | undefined): boolean {
  return (glibcTunables ?? "").split(":").some((t) => t.startsWith(TRIM_THRESHOLD_KEY));
}

/**
 * `env` with {@link EDGE_MALLOC_TUNABLE} added to `GLIBC_TUNABLES`, keeping the tunables already
 * there; an operator's own trim threshold wins.
 */
export function withEdgeMallocTunables<T extends Record<string, string | undefined>>(env: T): T {
  const current = env.GLIBC_TUNABLES;
  if (hasMallocTrimThreshold(current)) return env;
  return { ...env, GLIBC_TUNABLES: current ? `${current}:${EDGE_MALLOC_TUNABLE}` : EDGE_MALLOC_TUNABLE };
}
