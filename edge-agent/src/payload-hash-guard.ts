import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/** The streamed body's SHA-256 did not match the signed `x-amz-content-sha256`. */
export class PayloadHashMismatch extends Error {
  override readonly name = "PayloadHashMismatch";
  readonly code = "XAmzContentSHA256Mismatch";
  constructor(
    readonly expectedHex: string,
    readonly actualHex: string,
  ) {
    super("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
}

/**
 * Passes a body through in constant memory while hashing it, but holds back the last chunk
 * until the whole body has been hashed. If the digest differs from the signed hash the stream
 * errors instead of releasing that chunk, so upstream never receives a complete (tampered)
 * body and cannot complete the request.
 */
export class PayloadHashGuard extends Transform {
  readonly #hash = createHash("sha256");
  readonly #expectedHex: string;
  #held: Buffer | undefined;
  #bytes = 0;

  constructor(expectedHex: string) {
    super();
    this.#expectedHex = expectedHex.toLowerCase();
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    const previous = this.#held;
    this.#held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback): void {
    const actual = this.#hash.digest("hex");
    if (actual !== this.#expectedHex) {
      cb(new PayloadHashMismatch(this.#expectedHex, actual));
      return;
    }
    cb(null, this.#held);
  }
}
