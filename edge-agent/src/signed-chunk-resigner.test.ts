import { createHash, createHmac, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { type ChunkSigningContext, SignedChunkError, SignedChunkResigner } from "./signed-chunk-resigner.js";
import { SigningKeyCache } from "./sigv4-verifier.js";

const keys = new SigningKeyCache();
const EMPTY = createHash("sha256").digest("hex");

function context(secret: string, region: string, seed: string): ChunkSigningContext {
  return {
    signingKey: keys.get(secret, "20260101", region, "s3"),
    amzDate: "20260101T000000Z",
    scope: `20260101/${region}/s3/aws4_request`,
    seedSignature: seed,
  };
}

/** Encodes a signed aws-chunked body straight from the spec (independent of the resigner). */
function encode(
  ctx: ChunkSigningContext,
  data: Buffer,
  chunkBytes: number,
  trailer?: string,
): { wire: Buffer; signatures: string[] } {
  const hmac = (s: string): string => createHmac("sha256", ctx.signingKey).update(s).digest("hex");
  const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");
  const parts: Buffer[] = [];
  const signatures: string[] = [];
  let prev = ctx.seedSignature;
  const pieces: Buffer[] = [];
  for (let off = 0; off < data.length; off += chunkBytes) pieces.push(data.subarray(off, off + chunkBytes));
  pieces.push(Buffer.alloc(0));
  for (const piece of pieces) {
    prev = hmac(`AWS4-HMAC-SHA256-PAYLOAD\n${ctx.amzDate}\n${ctx.scope}\n${prev}\n${EMPTY}\n${sha(piece)}`);
    signatures.push(prev);
    parts.push(Buffer.from(`${piece.length.toString(16)};chunk-signature=${prev}\r\n`));
    if (piece.length > 0) parts.push(piece, Buffer.from("\r\n"));
  }
  if (trailer !== undefined) {
    const sig = hmac(`AWS4-HMAC-SHA256-TRAILER\n${ctx.amzDate}\n${ctx.scope}\n${prev}\n${sha(`${trailer}\n`)}`);
    signatures.push(sig);
    parts.push(Buffer.from(`${trailer}\r\nx-amz-trailer-signature:${sig}\r\n`));
  }
  parts.push(Buffer.from("\r\n"));
  return { wire: Buffer.concat(parts), signatures };
}

async function run(resigner: SignedChunkResigner, wire: Buffer, pieceBytes: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let off = 0; off < wire.length; off += pieceBytes) pieces.push(wire.subarray(off, off + pieceBytes));
  await pipeline(
    Readable.from(pieces),
    resigner,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  ).catch((err: unknown) => {
    (err as { forwarded?: Buffer }).forwarded = Buffer.concat(out);
    throw err;
  });
  return Buffer.concat(out);
}

const clientSeed = "a".repeat(64);
const upstreamSeed = "b".repeat(64);
const client = context("client-secret", "eu-west-1", clientSeed);
const upstream = context("upstream-secret", "us-east-1", upstreamSeed);
const data = randomBytes(200_000);

describe("SignedChunkResigner", () => {
  for (const trailer of [undefined, "x-amz-checksum-crc32:AAAAAA=="]) {
    it(`re-signs every chunk for the upstream chain, same length${trailer ? " (with trailer)" : ""}`, async () => {
      const { wire } = encode(client, data, 65_536, trailer);
      const expected = encode(upstream, data, 65_536, trailer);
      for (const pieceBytes of [1, 7, 4096, wire.length]) {
        const out = await run(
          new SignedChunkResigner({
            client,
            upstream,
            trailer: trailer !== undefined,
            decodedContentLength: data.length,
          }),
          wire,
          pieceBytes,
        );
        expect(out.length).toBe(wire.length);
        expect(out.equals(expected.wire)).toBe(true);
      }
    });
  }

  it("refuses a tampered chunk before releasing it (and never releases the final chunk)", async () => {
    const { wire } = encode(client, data, 65_536);
    const tampered = Buffer.from(wire);
    const at = tampered.indexOf("\r\n", tampered.indexOf("\r\n") + 2 + 65_536 + 2) + 2 + 10; // inside chunk 2
    tampered[at] = (tampered[at] as number) ^ 0xff;
    const err = await run(new SignedChunkResigner({ client, upstream, trailer: false }), tampered, 1000).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SignedChunkError);
    expect((err as SignedChunkError).code).toBe("SignatureDoesNotMatch");
    const forwarded = (err as { forwarded: Buffer }).forwarded;
    // Nothing went out: chunk 1 is held back until the next chunk verifies, and chunk 2 did not.
    expect(forwarded.length).toBe(0);
  });

  it("refuses a wrong seed, a bad trailer signature, a chunk over the limit and a truncated body", async () => {
    const { wire } = encode(client, data, 65_536, "x-amz-checksum-crc32:AAAAAA==");
    const codeOf = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => "ok",
        (e: unknown) => (e as SignedChunkError).code,
      );
    const wrongSeed = { ...client, seedSignature: "c".repeat(64) };
    expect(await codeOf(run(new SignedChunkResigner({ client: wrongSeed, upstream, trailer: true }), wire, 9999))).toBe(
      "SignatureDoesNotMatch",
    );
    const badTrailer = Buffer.from(wire.toString("latin1").replace("AAAAAA==", "BBBBBB=="), "latin1");
    expect(await codeOf(run(new SignedChunkResigner({ client, upstream, trailer: true }), badTrailer, 9999))).toBe(
      "SignatureDoesNotMatch",
    );
    expect(
      await codeOf(run(new SignedChunkResigner({ client, upstream, trailer: true, maxChunkBytes: 1024 }), wire, 9999)),
    ).toBe("InvalidChunkSizeError");
    expect(
      await codeOf(run(new SignedChunkResigner({ client, upstream, trailer: true }), wire.subarray(0, 70_000), 9999)),
    ).toBe("IncompleteBody");
    expect(
      await codeOf(
        run(new SignedChunkResigner({ client, upstream, trailer: true, decodedContentLength: 5 }), wire, 9999),
      ),
    ).toBe("IncompleteBody");
  });
});
