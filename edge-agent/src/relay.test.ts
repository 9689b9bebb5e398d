import { once } from "node:events";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { RelayError, relay } from "./relay.js";

function collector(): { sink: Writable; bytes: () => number } {
  let n = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb();
    },
  });
  return { sink, bytes: () => n };
}

describe("relay", () => {
  it("moves every byte and completes once, after the destination finished", async () => {
    const src = new PassThrough();
    const { sink, bytes } = collector();
    const calls: Array<Error | undefined> = [];
    relay(src, sink, (err) => calls.push(err));
    for (let i = 0; i < 100; i++) src.write(Buffer.alloc(1000, i));
    src.end();
    await once(sink, "finish");
    await new Promise((r) => setImmediate(r));
    expect(bytes()).toBe(100_000);
    expect(calls).toEqual([undefined]);
  });

  it("a failing source destroys the destination and reports the error", async () => {
    const src = new PassThrough();
    const { sink } = collector();
    const calls: Array<Error | undefined> = [];
    relay(src, sink, (err) => calls.push(err));
    src.write("partial");
    src.destroy(new Error("upstream reset"));
    await once(sink, "close");
    expect(sink.destroyed).toBe(true);
    expect(sink.writableFinished).toBe(false);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBeInstanceOf(RelayError);
    expect((calls[0] as RelayError).code).toBe("ERR_RELAY_SOURCE");
    expect((calls[0] as RelayError).message).toBe("upstream reset");
  });

  it("a destination closed early destroys the source", async () => {
    const src = new PassThrough();
    const { sink } = collector();
    const calls: Array<Error | undefined> = [];
    relay(src, sink, (err) => calls.push(err));
    src.write("some");
    sink.destroy();
    await once(src, "close");
    expect(src.destroyed).toBe(true);
    expect(calls).toHaveLength(1);
    expect((calls[0] as RelayError).code).toBe("ERR_RELAY_PREMATURE_CLOSE");
  });

  it("an upstream that dies mid-body cuts the client's response short (never a clean end)", async () => {
    const upstream = http.createServer((_req, res) => {
      res.writeHead(200, { "content-length": "100000" });
      res.write(Buffer.alloc(10_000, 1), () => res.socket?.destroy());
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    const upPort = (upstream.address() as AddressInfo).port;
    const results: Array<Error | undefined> = [];
    const proxy = http.createServer((req, res) => {
      http.get({ host: "127.0.0.1", port: upPort, path: req.url }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        relay(up, res, (err) => results.push(err));
      });
    });
    proxy.listen(0, "127.0.0.1");
    await once(proxy, "listening");
    try {
      const outcome = await new Promise<string>((resolve) => {
        http.get({ host: "127.0.0.1", port: (proxy.address() as AddressInfo).port, path: "/" }, (res) => {
          let n = 0;
          res.on("data", (c: Buffer) => {
            n += c.length;
          });
          res.on("end", () => resolve(`end after ${n}`));
          res.on("error", () => resolve(`cut after ${n}`));
          res.on("aborted", () => resolve(`cut after ${n}`));
        });
      });
      expect(outcome).toMatch(/^cut after \d+$/);
      expect(Number(outcome.split(" ")[2])).toBeLessThan(100_000);
      await expect.poll(() => results.length).toBe(1);
      expect(results[0]).toBeInstanceOf(RelayError);
    } finally {
      proxy.close();
      upstream.close();
    }
  });
});
