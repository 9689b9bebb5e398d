import type { Readable, Writable } from "node:stream";

/** Why a {@link relay} ended early. */
export class RelayError extends Error {
  override readonly name = "RelayError";
  constructor(
    readonly code: "ERR_RELAY_SOURCE" | "ERR_RELAY_PREMATURE_CLOSE",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `src.pipe(dst)` with one completion callback: `done()` once `dst` has finished, or
 * `done(err)` once either side failed or closed early (the other side is then destroyed, as
 * `stream.pipeline` does). It is what the edge needs of `pipeline` on its per-request path at a
 * fraction of the cost: no AbortController (whose abort builds a DOMException per call), no
 * end-of-stream watcher per stream. Backpressure is `pipe`'s.
 *
 * `src` is destroyed when `dst` closes before finishing (a client that went away must not keep
 * an upstream response flowing); `dst` is destroyed, without an error, when `src` fails.
 */
export function relay(src: Readable, dst: Writable, done: (err?: Error) => void): void {
  let ended = false;
  const end = (err?: Error): void => {
    if (ended) return;
    ended = true;
    done(err);
  };
  src.on("error", (err) => {
    dst.destroy();
    end(new RelayError("ERR_RELAY_SOURCE", err.message, { cause: err }));
  });
  src.on("close", () => {
    if (src.readableEnded || ended) return;
    dst.destroy();
    end(new RelayError("ERR_RELAY_PREMATURE_CLOSE", "the source closed before its end"));
  });
  dst.on("finish", () => end());
  dst.on("close", () => {
    if (dst.writableFinished || ended) return;
    src.destroy();
    end(new RelayError("ERR_RELAY_PREMATURE_CLOSE", "the destination closed before it finished"));
  });
  dst.on("error", () => {
    // Reported through "close"; a listener keeps an unhandled 'error' from crashing the process.
  });
  src.pipe(dst);
}
