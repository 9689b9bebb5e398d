import { createHash } from "node:crypto";
import { PassThrough, Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { PayloadHashGuard, PayloadHashMismatch } from "./payload-hash-guard.js";

function sink(): { stream: Writable; received: Buffer[] } {
  const received: Buffer[] = [];
  return {
    received,
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        received.push(chunk);
        cb();
      },
    }),
  };
}

const chunks = [Buffer.from("a".repeat(1000)), Buffer.from("b".repeat(1000)), Buffer.from("c".repeat(10))];
const body = Buffer.concat(chunks);
const goodHash = createHash("sha256").update(body).digest("hex");

describe("PayloadHashGuard", () => {
  it("passes a matching body through byte for byte", async () => {
    const s = sink();
    const guard = new PayloadHashGuard(goodHash);
    await pipeline(Readable.from(chunks), guard, s.stream);
    expect(Buffer.concat(s.received).equals(body)).toBe(true);
    expect(guard.bytes).toBe(body.length);
  });

  it("never releases the last chunk of a tampered body", async () => {
    const s = sink();
    const tampered = [chunks[0] as Buffer, chunks[1] as Buffer, Buffer.from("X".repeat(10))];
    await expect(pipeline(Readable.from(tampered), new PayloadHashGuard(goodHash), s.stream)).rejects.toBeInstanceOf(
      PayloadHashMismatch,
    );
    const forwarded = Buffer.concat(s.received);
    expect(forwarded.length).toBeLessThan(body.length);
    expect(forwarded.includes(Buffer.from("X"))).toBe(false);
  });

  it("holds back only one chunk at a time (constant memory)", async () => {
    const input = new PassThrough();
    const guard = new PayloadHashGuard(goodHash);
    const s = sink();
    const done = pipeline(input, guard, s.stream);
    input.write(chunks[0]);
    input.write(chunks[1]);
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(s.received).equals(chunks[0] as Buffer)).toBe(true);
    input.end(chunks[2]);
    await done;
    expect(Buffer.concat(s.received).equals(body)).toBe(true);
  });
});
