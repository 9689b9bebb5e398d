import { createHash, type Hash } from "node:crypto";

/** Size and hex SHA-256 of a body that is never stored. */
export interface PayloadDigestValue {
  size: number;
  sha256: string;
}

const CR = 0x0d;
const LF = 0x0a;
/** A chunk header line (`<hex-size>[;chunk-signature=<64 hex>]`) is far shorter than this. */
const MAX_HEADER_LINE = 4096;

/**
 * Hashes a body incrementally as it streams (constant memory).
 *
 * `"raw"` hashes the bytes as they are. `"aws-chunked"` parses the `aws-chunked` framing
 * (signed chunks `<hex>;chunk-signature=<sig>\r\n<data>\r\n`, or unsigned ones with a trailer)
 * and hashes only the chunk data, so size and digest are those of the decoded object, the
 * same bytes S3 stores; chunk headers and trailers are not covered. A body whose framing
 * cannot be parsed yields no digest ({@link PayloadDigest.digest} returns `undefined`).
 */
export class PayloadDigest {
  readonly #hash: Hash = createHash("sha256");
  readonly #chunked: boolean;
  #size = 0;
  #failed = false;
  /** aws-chunked state: bytes of chunk data still to hash, or -1 while reading a header line. */
  #remaining = -1;
  /** CRLF bytes still to skip after a chunk's data. */
  #skip = 0;
  #line: Buffer[] = [];
  #lineBytes = 0;
  #done = false;

  constructor(mode: "raw" | "aws-chunked") {
    this.#chunked = mode === "aws-chunked";
  }

  /** Feeds the next piece of the body. */
  update(chunk: Buffer): void {
    if (this.#failed) return;
    if (!this.#chunked) {
      this.#hash.update(chunk);
      this.#size += chunk.length;
      return;
    }
    let i = 0;
    while (i < chunk.length && !this.#done && !this.#failed) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        this.#skip -= n;
        i += n;
      } else if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, chunk.length - i);
        this.#hash.update(chunk.subarray(i, i + n));
        this.#size += n;
        this.#remaining -= n;
        i += n;
        if (this.#remaining === 0) {
          this.#remaining = -1;
          this.#skip = 2;
        }
      } else {
        const lf = chunk.indexOf(LF, i);
        const end = lf === -1 ? chunk.length : lf + 1;
        // A copy: the caller may reuse `chunk`'s memory once update() returns (the digest
        // worker hands its batch buffers back), and a header line can straddle two updates.
        this.#line.push(Buffer.from(chunk.subarray(i, end)));
        this.#lineBytes += end - i;
        i = end;
        if (this.#lineBytes > MAX_HEADER_LINE) this.#failed = true;
        else if (lf !== -1) this.#headerLine();
      }
    }
  }

  #headerLine(): void {
    const line = Buffer.concat(this.#line, this.#lineBytes);
    this.#line = [];
    this.#lineBytes = 0;
    let end = line.length - 1;
    if (end > 0 && line[end - 1] === CR) end -= 1;
    const text = line.toString("latin1", 0, end);
    const semi = text.indexOf(";");
    const hex = (semi === -1 ? text : text.slice(0, semi)).trim();
    if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) {
      this.#failed = true;
      return;
    }
    const size = Number.parseInt(hex, 16);
    if (size === 0) this.#done = true;
    else this.#remaining = size;
  }

  /** Size and hex SHA-256 of what was fed (decoded data for aws-chunked); `undefined` if unparseable. */
  digest(): PayloadDigestValue | undefined {
    if (this.#failed || (this.#chunked && !this.#done)) return undefined;
    return { size: this.#size, sha256: this.#hash.digest("hex") };
  }
}
