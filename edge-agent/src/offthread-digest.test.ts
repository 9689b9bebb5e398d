import { createHash } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { DigestPool, digestBody, OFFTHREAD_MIN_BYTES } from "./offthread-digest.js";

const pool = new DigestPool();
afterAll(() => pool.close());

function body(bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Streams `data` in uneven pieces. */
function pieces(data: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 13) % 200_000 || 1) {
    parts.push(data.subarray(at, Math.min(data.length, at + n)));
  }
  return Readable.from(parts, { objectMode: false });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("off-thread object digests", () => {
  it("hashes a 24 MiB body on the worker exactly as inline SHA-256 does", async () => {
    const data = body(24 * 1024 * 1024 + 17, 1);
    const src = pieces(data);
    const d = digestBody(src, "raw", pool, data.length);
    await new Promise((r) => src.on("end", r));
    expect(await d.settle()).toEqual({ size: data.length, sha256: sha(data) });
  });

  it("decodes aws-chunked framing on the worker (only chunk data is hashed)", async () => {
    const data = body(3 * 1024 * 1024, 2);
    const framed: Buffer[] = [];
    for (let at = 0; at < data.length; at += 65536) {
      const c = data.subarray(at, at + 65536);
      framed.push(
        Buffer.from(`${c.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`),
        c,
        Buffer.from("\r\n"),
      );
    }
    framed.push(Buffer.from(`0;chunk-signature=${"0".repeat(64)}\r\n\r\n`));
    const src = pieces(Buffer.concat(framed));
    const d = digestBody(src, "aws-chunked", pool, Number.POSITIVE_INFINITY);
    await new Promise((r) => src.on("end", r));
    expect(await d.settle()).toEqual({ size: data.length, sha256: sha(data) });
  });

  it("aws-chunked header lines that straddle the worker's batches (whose buffers are reused) still parse", async () => {
    // Chunk sizes chosen so that chunk headers start a few bytes before each 512 KiB batch
    // boundary, at every offset from 1 to 40 bytes before it.
    const framed: Buffer[] = [];
    const data: Buffer[] = [];
    let at = 0;
    const BATCH = 512 * 1024;
    for (let k = 1; k <= 40; k++) {
      const head = (n: number) => Buffer.from(`${n.toString(16)};chunk-signature=${"ab".repeat(32)}\r\n`);
      const boundary = k * BATCH;
      // this chunk's header + data + CRLF ends `k` bytes before the boundary, so the next header straddles it
      const guess = boundary - k - at - 2;
      const h = head(guess).length;
      const n = guess - h;
      const d = body(n, k);
      framed.push(head(n), d, Buffer.from("\r\n"));
      data.push(d);
      at += head(n).length + n + 2;
    }
    framed.push(Buffer.from(`0;chunk-signature=${"ab".repeat(32)}\r\n\r\n`));
    const all = Buffer.concat(data);
    const src = pieces(Buffer.concat(framed));
    const d = digestBody(src, "aws-chunked", pool, Number.POSITIVE_INFINITY);
    await new Promise((r) => src.on("end", r));
    expect(await d.settle()).toEqual({ size: all.length, sha256: sha(all) });
  });

  it("runs many transfers at once without mixing them up", async () => {
    const bodies = [0, 1, 2, 3, 4, 5].map((i) => body(OFFTHREAD_MIN_BYTES + i * 333_333, 10 + i));
    const results = await Promise.all(
      bodies.map(async (b) => {
        const src = pieces(b);
        const d = digestBody(src, "raw", pool, b.length);
        await new Promise((r) => src.on("end", r));
        return d.settle();
      }),
    );
    expect(results).toEqual(bodies.map((b) => ({ size: b.length, sha256: sha(b) })));
  });

  it("a body that never ended gives no digest, and an abandoned one neither", async () => {
    const src = new PassThrough();
    const d = digestBody(src, "raw", pool, 50 * 1024 * 1024);
    src.write(body(5 * 1024 * 1024, 3));
    expect(await d.settle()).toBeUndefined();
    const src2 = new PassThrough();
    const d2 = digestBody(src2, "raw", pool, 50 * 1024 * 1024);
    src2.write(body(2 * 1024 * 1024, 4));
    d2.abandon();
    src2.end();
    expect(await d2.settle()).toBeUndefined();
  });

  it("holds the source while the worker is behind (no unbounded buffering)", async () => {
    // 64 MiB written as fast as the stream takes it: pipe's backpressure must engage.
    const src = new PassThrough({ highWaterMark: 64 * 1024 });
    const d = digestBody(src, "raw", pool, 64 * 1024 * 1024);
    const chunk = body(1024 * 1024, 5);
    let refused = 0;
    for (let i = 0; i < 64; i++) {
      if (!src.write(chunk)) {
        refused++;
        await new Promise((r) => src.once("drain", r));
      }
    }
    src.end();
    const v = await new Promise<unknown>((resolve) => src.on("end", () => resolve(d.settle())));
    expect(refused).toBeGreaterThan(0);
    expect(v).toEqual({ size: 64 * 1024 * 1024, sha256: sha(Buffer.concat(Array(64).fill(chunk))) });
  });

  it("small bodies are digested inline", async () => {
    const data = body(1000, 6);
    const src = pieces(data);
    const d = digestBody(src, "raw", pool, data.length);
    src.resume();
    await new Promise((r) => src.on("end", r));
    expect(await d.settle()).toEqual({ size: 1000, sha256: sha(data) });
  });
});
