import { createHash, createHmac } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { signaturesEqual } from "./sigv4-verifier.js";

/**
 * S3's signed aws-chunked payloads (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`), verified
 * and re-signed as they stream. The wire format:
 *
 * ```text
 * <hex-size>;chunk-signature=<64 hex>\r\n<data>\r\n      (repeated)
 * 0;chunk-signature=<64 hex>\r\n                          (final, empty chunk)
 * <name>:<value>\r\n ... x-amz-trailer-signature:<64 hex>\r\n   (-TRAILER only)
 * \r\n
 * ```
 *
 * Chunk i is signed over `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<sig i-1>\n<sha256("")>\n<sha256(data)>`,
 * seeded by the request's header signature; the trailer over
 * `AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<final chunk sig>\n<sha256("name:value\n"...)>`.
 */

/** Hex SHA-256 of the empty string. */
export const EMPTY_SHA256_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The two signed streaming payload literals of `x-amz-content-sha256`. */
export const SIGNED_CHUNK_PAYLOADS: ReadonlySet<string> = new Set([
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
]);

/** Why a signed chunked body was refused; `code` is the S3 error code to return. */
export class SignedChunkError extends Error {
  override readonly name = "SignedChunkError";
  constructor(
    readonly code: "SignatureDoesNotMatch" | "IncompleteBody" | "InvalidChunkSizeError" | "MalformedTrailerError",
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** One side of the chain: signing key, date and scope of the seed signature, and the seed itself. */
export interface ChunkSigningContext {
  /** Derived SigV4 signing key (kSigning). */
  signingKey: Buffer;
  /** yyyymmddThhmmssZ of the seed signature. */
  amzDate: string;
  /** `yyyymmdd/region/service/aws4_request`. */
  scope: string;
  /** Hex signature of the request headers (the `Authorization` header's `Signature=`). */
  seedSignature: string;
}

/** Options for {@link SignedChunkResigner}. */
export interface SignedChunkResignerOptions {
  /** The client's chain, to verify against. */
  client: ChunkSigningContext;
  /** The upstream request's chain, to sign with. */
  upstream: ChunkSigningContext;
  /** `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: trailer lines and a trailer signature follow the last chunk. */
  trailer: boolean;
  /** Largest chunk accepted; bigger ones are refused, since one whole chunk is held. Default 16 MiB. */
  maxChunkBytes?: number;
  /** `x-amz-decoded-content-length`, if sent: the decoded body must have exactly this size. */
  decodedContentLength?: number;
}

/** Signs one chunk: HMAC over the chunk string-to-sign. */
export function chunkSignature(
  ctx: Omit<ChunkSigningContext, "seedSignature">,
  previousHex: string,
  dataSha256Hex: string,
): Buffer {
  return createHmac("sha256", ctx.signingKey)
    .update(
      `AWS4-HMAC-SHA256-PAYLOAD\n${ctx.amzDate}\n${ctx.scope}\n${previousHex}\n${EMPTY_SHA256_HEX}\n${dataSha256Hex}`,
    )
    .digest();
}

/** Signs the trailer: HMAC over the trailer string-to-sign; `canonicalTrailer` is `name:value\n` per line. */
export function trailerSignature(
  ctx: Omit<ChunkSigningContext, "seedSignature">,
  previousHex: string,
  canonicalTrailer: string,
): Buffer {
  const hash = createHash("sha256").update(canonicalTrailer).digest("hex");
  return createHmac("sha256", ctx.signingKey)
    .update(`AWS4-HMAC-SHA256-TRAILER\n${ctx.amzDate}\n${ctx.scope}\n${previousHex}\n${hash}`)
    .digest();
}

const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);
const MAX_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;
const CHUNK_HEADER_RE = /^([0-9a-fA-F]{1,8});chunk-signature=([0-9a-f]{64})$/;
const TRAILER_SIGNATURE_RE = /^x-amz-trailer-signature:\s*([0-9a-f]{64})\s*$/i;

type State = "header" | "data" | "data-crlf" | "trailer" | "done";

/**
 * Verifies every chunk signature of a signed aws-chunked body against the client's chain and
 * re-emits it with signatures of the upstream chain, in constant memory: one chunk is held
 * until its signature is checked (so a tampered chunk is never forwarded, and the final chunk
 * that lets upstream complete the request is released only after every check passed). Chunk
 * sizes and framing are unchanged and signatures keep their 64 hex digits, so the body's length
 * (and `Content-Length`) is identical. Errors with {@link SignedChunkError}.
 */
export class SignedChunkResigner extends Transform {
  readonly #client: ChunkSigningContext;
  readonly #upstream: ChunkSigningContext;
  readonly #trailer: boolean;
  readonly #maxChunkBytes: number;
  readonly #decodedContentLength: number | undefined;
  #state: State = "header";
  #line: Buffer[] = [];
  #lineBytes = 0;
  #clientPrev: string;
  #upstreamPrev: string;
  #chunkSize = 0;
  #chunkSizeText = "";
  #chunkSignature = "";
  #remaining = 0;
  #hash = createHash("sha256");
  /**
   * The chunk being received, framed as it is forwarded: `<size>;chunk-signature=<64 hex>\r\n`,
   * the data copied in as it arrives, `\r\n`. The signature is written once the chunk verifies,
   * so each chunk goes downstream as one buffer (one socket write), holding no input buffers.
   */
  #out: Buffer = EMPTY;
  #outAt = 0;
  #sigAt = 0;
  #crlfSeen = 0;
  /**
   * The last verified data chunk, re-signed, kept back until the next chunk arrives or the body
   * (trailer included) has verified: an upstream that decodes aws-chunked may otherwise complete
   * the object once all data bytes are in, before a tampered trailer is seen.
   */
  #held: Buffer[] = [];
  #trailerLines: string[] = [];
  #trailerBytes = 0;
  #decodedBytes = 0;
  #bytesIn = 0;

  constructor(options: SignedChunkResignerOptions) {
    super();
    this.#client = options.client;
    this.#upstream = options.upstream;
    this.#trailer = options.trailer;
    this.#maxChunkBytes = options.maxChunkBytes ?? 16 * 1024 * 1024;
    this.#decodedContentLength = options.decodedContentLength;
    this.#clientPrev = options.client.seedSignature;
    this.#upstreamPrev = options.upstream.seedSignature;
  }

  /** Encoded bytes received so far. */
  get bytes(): number {
    return this.#bytesIn;
  }

  /** Decoded (payload) bytes received so far. */
  get decodedBytes(): number {
    return this.#decodedBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytesIn += chunk.length;
    try {
      this.#consume(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.#state !== "done") {
      cb(new SignedChunkError("IncompleteBody", 400, "The request body terminated unexpectedly"));
      return;
    }
    cb();
  }

  #consume(buf: Buffer): void {
    let off = 0;
    while (off < buf.length) {
      switch (this.#state) {
        case "header":
        case "trailer": {
          const line = this.#readLine(buf, off);
          if (line === undefined) return;
          off = line.next;
          if (this.#state === "header") this.#onChunkHeader(line.text);
          else this.#onTrailerLine(line.text);
          break;
        }
        case "data": {
          const n = Math.min(this.#remaining, buf.length - off);
          const piece = buf.subarray(off, off + n);
          this.#hash.update(piece);
          this.#outAt += piece.copy(this.#out, this.#outAt);
          this.#remaining -= n;
          off += n;
          if (this.#remaining === 0) this.#state = "data-crlf";
          break;
        }
        case "data-crlf": {
          if (buf[off] !== CRLF[this.#crlfSeen]) {
            throw new SignedChunkError("IncompleteBody", 400, "Chunk data is not followed by CRLF.");
          }
          off += 1;
          this.#crlfSeen += 1;
          if (this.#crlfSeen === 2) {
            this.#crlfSeen = 0;
            this.#releaseChunk();
          }
          break;
        }
        case "done":
          throw new SignedChunkError("IncompleteBody", 400, "Unexpected data after the final chunk.");
      }
    }
  }

  /** Reads up to CRLF across buffer boundaries; `undefined` when the line is not complete yet. */
  #readLine(buf: Buffer, off: number): { text: string; next: number } | undefined {
    const end = buf.indexOf(CRLF, off);
    // A CR at the end of the previous piece and LF at the start of this one.
    const prev = this.#line[this.#line.length - 1];
    if (prev !== undefined && prev[prev.length - 1] === 0x0d && buf[off] === 0x0a) {
      const all = Buffer.concat(this.#line);
      this.#line = [];
      this.#lineBytes = 0;
      return { text: all.subarray(0, all.length - 1).toString("latin1"), next: off + 1 };
    }
    if (end === -1) {
      this.#line.push(buf.subarray(off));
      this.#lineBytes += buf.length - off;
      if (this.#lineBytes > MAX_LINE_BYTES) {
        throw new SignedChunkError("IncompleteBody", 400, "Chunk header or trailer line too long.");
      }
      return undefined;
    }
    let text: string;
    if (this.#line.length === 0) text = buf.toString("latin1", off, end);
    else {
      this.#line.push(buf.subarray(off, end));
      text = Buffer.concat(this.#line).toString("latin1");
      this.#line = [];
      this.#lineBytes = 0;
    }
    if (text.length > MAX_LINE_BYTES) throw new SignedChunkError("IncompleteBody", 400, "Line too long.");
    return { text, next: end + 2 };
  }

  #onChunkHeader(text: string): void {
    const m = CHUNK_HEADER_RE.exec(text);
    if (m === null) {
      throw new SignedChunkError(
        "IncompleteBody",
        400,
        "Malformed chunk header: expected <hex-size>;chunk-signature=<signature>.",
      );
    }
    this.#chunkSizeText = m[1] as string;
    this.#chunkSignature = m[2] as string;
    this.#chunkSize = Number.parseInt(this.#chunkSizeText, 16);
    if (this.#chunkSize > this.#maxChunkBytes) {
      throw new SignedChunkError(
        "InvalidChunkSizeError",
        403,
        `Chunk of ${this.#chunkSize} bytes exceeds this edge's limit of ${this.#maxChunkBytes} bytes.`,
      );
    }
    this.#decodedBytes += this.#chunkSize;
    if (this.#decodedContentLength !== undefined && this.#decodedBytes > this.#decodedContentLength) {
      throw new SignedChunkError(
        "IncompleteBody",
        400,
        "The decoded body is longer than x-amz-decoded-content-length.",
      );
    }
    if (this.#chunkSize === 0) {
      if (this.#decodedContentLength !== undefined && this.#decodedBytes !== this.#decodedContentLength) {
        throw new SignedChunkError(
          "IncompleteBody",
          400,
          "You did not provide the number of bytes specified by the x-amz-decoded-content-length header.",
        );
      }
      // The final chunk: verified now, released with (or instead of) the trailer.
      this.#verifyAndSignChunk(EMPTY_SHA256_HEX);
      this.#state = "trailer";
      return;
    }
    this.#remaining = this.#chunkSize;
    const head = `${this.#chunkSizeText};chunk-signature=`;
    this.#out = Buffer.allocUnsafe(head.length + 64 + 2 + this.#chunkSize + 2);
    this.#sigAt = this.#out.write(head, 0, "latin1");
    this.#outAt = this.#sigAt + 64;
    this.#outAt += CRLF.copy(this.#out, this.#outAt);
    this.#state = "data";
  }

  #verifyAndSignChunk(dataHashHex: string): string {
    const expected = chunkSignature(this.#client, this.#clientPrev, dataHashHex);
    if (!signaturesEqual(this.#chunkSignature, expected)) {
      throw new SignedChunkError(
        "SignatureDoesNotMatch",
        403,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
      );
    }
    this.#clientPrev = this.#chunkSignature;
    this.#upstreamPrev = chunkSignature(this.#upstream, this.#upstreamPrev, dataHashHex).toString("hex");
    return this.#upstreamPrev;
  }

  #releaseChunk(): void {
    const signature = this.#verifyAndSignChunk(this.#hash.digest("hex"));
    this.#releaseHeld();
    this.#out.write(signature, this.#sigAt, "latin1");
    CRLF.copy(this.#out, this.#outAt);
    this.#held = [this.#out];
    this.#out = EMPTY;
    this.#hash = createHash("sha256");
    this.#state = "header";
  }

  #releaseHeld(): void {
    for (const piece of this.#held) this.push(piece);
    this.#held = [];
  }

  #onTrailerLine(text: string): void {
    this.#trailerBytes += text.length + 2;
    if (this.#trailerBytes > MAX_TRAILER_BYTES) {
      throw new SignedChunkError("MalformedTrailerError", 400, "The trailer is too long.");
    }
    if (text !== "") {
      this.#trailerLines.push(text);
      return;
    }
    // The empty line ends the body: check the trailer, then release the final chunk and trailer.
    const finalChunk = `${this.#chunkSizeText};chunk-signature=${this.#upstreamPrev}\r\n`;
    if (!this.#trailer) {
      if (this.#trailerLines.length > 0) {
        throw new SignedChunkError(
          "MalformedTrailerError",
          400,
          "Trailer sent without STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.",
        );
      }
      this.#releaseHeld();
      this.push(Buffer.from(`${finalChunk}\r\n`, "latin1"));
      this.#state = "done";
      return;
    }
    let canonical = "";
    let out = finalChunk;
    let signatureLine: string | undefined;
    let signature = "";
    for (const line of this.#trailerLines) {
      const sig = TRAILER_SIGNATURE_RE.exec(line);
      if (sig !== null) {
        if (signatureLine !== undefined) {
          throw new SignedChunkError("MalformedTrailerError", 400, "More than one x-amz-trailer-signature.");
        }
        signatureLine = line;
        signature = (sig[1] as string).toLowerCase();
        continue;
      }
      if (signatureLine !== undefined) {
        throw new SignedChunkError("MalformedTrailerError", 400, "x-amz-trailer-signature must be the last trailer.");
      }
      const colon = line.indexOf(":");
      if (colon <= 0) throw new SignedChunkError("MalformedTrailerError", 400, "Malformed trailer line.");
      canonical += `${line.slice(0, colon).trim().toLowerCase()}:${line.slice(colon + 1).trim()}\n`;
      out += `${line}\r\n`;
    }
    if (signatureLine === undefined) {
      throw new SignedChunkError("SignatureDoesNotMatch", 403, "The trailer is missing x-amz-trailer-signature.");
    }
    if (!signaturesEqual(signature, trailerSignature(this.#client, this.#clientPrev, canonical))) {
      throw new SignedChunkError(
        "SignatureDoesNotMatch",
        403,
        "The trailer signature we calculated does not match the signature you provided.",
      );
    }
    const upstreamSig = trailerSignature(this.#upstream, this.#upstreamPrev, canonical).toString("hex");
    const at = signatureLine.toLowerCase().lastIndexOf(signature);
    out += `${signatureLine.slice(0, at)}${upstreamSig}${signatureLine.slice(at + 64)}\r\n\r\n`;
    this.#releaseHeld();
    this.push(Buffer.from(out, "latin1"));
    this.#state = "done";
  }
}
