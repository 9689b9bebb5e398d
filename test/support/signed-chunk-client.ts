import { createHash, createHmac } from "node:crypto";
import * as http from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { NodeSha256 } from "./upstream-signature.js";

/**
 * A small S3 client for signed aws-chunked uploads (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`,
 * what the Java SDKs send), written from the S3 documentation: the seed signature comes from
 * `@smithy/signature-v4` header signing, each chunk's signature is computed here.
 */

const EMPTY_SHA256 = createHash("sha256").digest("hex");

export interface ChunkCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignedChunkPutOptions {
  /** e.g. `http://127.0.0.1:8787` */
  endpoint: string;
  /** Raw (already encoded) path, e.g. `/bucket/key`. */
  path: string;
  credentials: ChunkCredentials;
  region: string;
  /** The object: one Buffer, or a size with a generator of deterministic bytes. */
  data: Buffer | { size: number; fill: (offset: number, chunk: Buffer) => void };
  chunkBytes: number;
  /** Adds an `x-amz-checksum-sha256` trailer (signed, `-TRAILER` mode). */
  trailer?: boolean;
  /** Flips a byte of this chunk's data after signing it (0-based). */
  tamperChunk?: number;
  /** Corrupts the trailer value after signing. */
  tamperTrailer?: boolean;
  extraHeaders?: Record<string, string>;
}

export interface SignedChunkPutResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Set when the connection failed before a response arrived (e.g. reset after a refusal). */
  error?: string;
}

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = createHmac("sha256", `AWS4${secret}`).update(date).digest();
  const kRegion = createHmac("sha256", kDate).update(region).digest();
  const kService = createHmac("sha256", kRegion).update(service).digest();
  return createHmac("sha256", kService).update("aws4_request").digest();
}

/** Encoded length of a signed chunked body. */
export function signedChunkedLength(size: number, chunkBytes: number, trailerLines: string[]): number {
  const sigLine = (n: number): number => n.toString(16).length + ";chunk-signature=".length + 64 + 2;
  let total = 0;
  for (let off = 0; off < size; off += chunkBytes) {
    const n = Math.min(chunkBytes, size - off);
    total += sigLine(n) + n + 2;
  }
  total += sigLine(0);
  for (const l of trailerLines) total += l.length + 2;
  if (trailerLines.length > 0) total += "x-amz-trailer-signature:".length + 64 + 2;
  return total + 2;
}

/** PUTs an object with a signed aws-chunked body, streaming it chunk by chunk. */
export async function putSignedChunks(o: SignedChunkPutOptions): Promise<SignedChunkPutResult> {
  const url = new URL(o.endpoint);
  const size = Buffer.isBuffer(o.data) ? o.data.length : o.data.size;
  const chunkAt = (off: number): Buffer => {
    const n = Math.min(o.chunkBytes, size - off);
    if (Buffer.isBuffer(o.data)) return o.data.subarray(off, off + n);
    const b = Buffer.allocUnsafe(n);
    o.data.fill(off, b);
    return b;
  };
  // The trailer checksum needs the whole payload first: one pass to hash it.
  let trailerLine: string | undefined;
  if (o.trailer) {
    const h = createHash("sha256");
    for (let off = 0; off < size; off += o.chunkBytes) h.update(chunkAt(off));
    trailerLine = `x-amz-checksum-sha256:${h.digest("base64")}`;
  }
  const mode = o.trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  const contentLength = signedChunkedLength(size, o.chunkBytes, trailerLine ? [trailerLine] : []);
  const headers: Record<string, string> = {
    host: url.host,
    "content-encoding": "aws-chunked",
    "content-length": String(contentLength),
    "x-amz-decoded-content-length": String(size),
    "x-amz-content-sha256": mode,
    ...(o.trailer ? { "x-amz-trailer": "x-amz-checksum-sha256" } : {}),
    ...o.extraHeaders,
  };
  const signer = new SignatureV4({
    credentials: o.credentials,
    region: o.region,
    service: "s3",
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: "PUT",
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: o.path,
    query: {},
    headers,
  });
  const amzDate = signed.headers["x-amz-date"] as string;
  const scope = `${amzDate.slice(0, 8)}/${o.region}/s3/aws4_request`;
  const key = signingKey(o.credentials.secretAccessKey, amzDate.slice(0, 8), o.region, "s3");
  let prev = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization as string)?.[1] as string;
  const sign = (s: string): string => createHmac("sha256", key).update(s).digest("hex");
  const chunkHeader = (data: Buffer): string => {
    const hash = createHash("sha256").update(data).digest("hex");
    prev = sign(`AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${prev}\n${EMPTY_SHA256}\n${hash}`);
    return `${data.length.toString(16)};chunk-signature=${prev}\r\n`;
  };

  return new Promise<SignedChunkPutResult>((resolve) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: "PUT",
      path: o.path,
      headers: signed.headers,
    });
    let settled = false;
    req.on("response", (res) => {
      const body: Buffer[] = [];
      res.on("data", (d: Buffer) => body.push(d));
      res.on("end", () => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(body).toString() });
      });
    });
    req.on("error", (err) => {
      if (!settled) resolve({ status: 0, headers: {}, body: "", error: err.message });
      settled = true;
    });
    void (async () => {
      const write = (b: Buffer | string): Promise<void> =>
        new Promise((r) => {
          if (req.destroyed || !req.write(b)) {
            if (req.destroyed) return r();
            req.once("drain", r);
            req.once("close", r);
          } else r();
        });
      let index = 0;
      for (let off = 0; off < size; off += o.chunkBytes, index++) {
        const data = chunkAt(off);
        const headerLine = chunkHeader(data);
        let out = data;
        if (o.tamperChunk === index) {
          out = Buffer.from(data);
          out[0] = (out[0] as number) ^ 0xff;
        }
        await write(headerLine);
        await write(out);
        await write("\r\n");
        if (req.destroyed) return;
      }
      await write(chunkHeader(Buffer.alloc(0)));
      if (trailerLine !== undefined) {
        const hash = createHash("sha256").update(`${trailerLine}\n`).digest("hex");
        const sig = sign(`AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${prev}\n${hash}`);
        const sent = o.tamperTrailer ? trailerLine.replace(/:./, ":A") : trailerLine;
        await write(`${sent}\r\nx-amz-trailer-signature:${sig}\r\n`);
      }
      req.end("\r\n");
    })();
  });
}

/** Checks the chunk (and trailer) signatures of a captured signed aws-chunked body; returns the payload. */
export function decodeSignedChunks(
  wire: Buffer,
  chain: { secretAccessKey: string; amzDate: string; region: string; seedSignature: string },
): { data: Buffer; trailers: string[]; signaturesValid: boolean; chunkSizes: number[] } {
  const date = chain.amzDate.slice(0, 8);
  const scope = `${date}/${chain.region}/s3/aws4_request`;
  const key = signingKey(chain.secretAccessKey, date, chain.region, "s3");
  const sign = (s: string): string => createHmac("sha256", key).update(s).digest("hex");
  let prev = chain.seedSignature;
  let valid = true;
  let off = 0;
  const data: Buffer[] = [];
  const chunkSizes: number[] = [];
  for (;;) {
    const eol = wire.indexOf("\r\n", off);
    const m = /^([0-9a-f]+);chunk-signature=([0-9a-f]{64})$/.exec(wire.toString("latin1", off, eol));
    if (m === null) throw new Error(`bad chunk header at ${off}`);
    const n = Number.parseInt(m[1] as string, 16);
    const chunk = wire.subarray(eol + 2, eol + 2 + n);
    const hash = createHash("sha256").update(chunk).digest("hex");
    const expected = sign(`AWS4-HMAC-SHA256-PAYLOAD\n${chain.amzDate}\n${scope}\n${prev}\n${EMPTY_SHA256}\n${hash}`);
    if (expected !== m[2]) valid = false;
    prev = m[2] as string;
    chunkSizes.push(n);
    if (n === 0) {
      off = eol + 2;
      break;
    }
    data.push(chunk);
    off = eol + 2 + n + 2;
  }
  const rest = wire.toString("latin1", off).split("\r\n");
  const trailers = rest.filter((l) => l !== "" && !l.startsWith("x-amz-trailer-signature:"));
  const sigLine = rest.find((l) => l.startsWith("x-amz-trailer-signature:"));
  if (sigLine !== undefined) {
    const hash = createHash("sha256")
      .update(trailers.map((l) => `${l}\n`).join(""))
      .digest("hex");
    if (sign(`AWS4-HMAC-SHA256-TRAILER\n${chain.amzDate}\n${scope}\n${prev}\n${hash}`) !== sigLine.slice(24)) {
      valid = false;
    }
  }
  return { data: Buffer.concat(data), trailers, signaturesValid: valid, chunkSizes };
}
