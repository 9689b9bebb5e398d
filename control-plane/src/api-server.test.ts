import * as http2 from "node:http2";
import { type AddressInfo, createServer, connect as netConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiServer } from "./api-server.js";

describe("ApiServer", () => {
  let server: ApiServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  it("serves HTTP/1.1 and h2c on the same port", async () => {
    server = new ApiServer((req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`v${req.httpVersion}`);
    });
    const { url, port } = await server.listen(0, "127.0.0.1");
    expect(url).toBe(`http://127.0.0.1:${port}`);

    expect(await (await fetch(`${url}/x`)).text()).toBe("v1.1");

    const session = http2.connect(url);
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ":path": "/x" });
      let data = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => {
        data += c;
      });
      req.on("end", () => resolve(data));
      req.on("error", reject);
      req.end();
    });
    expect(body).toBe("v2.0");
    session.close();
  });

  it("decides only once it has seen enough bytes (split preface, split request line)", async () => {
    server = new ApiServer((req, res) => res.end(`v${req.httpVersion}`));
    const { port } = await server.listen(0, "127.0.0.1");
    // A proxy that forwards the client's first chunk in two pieces, 30 ms apart.
    const proxy = createServer((client) => {
      const upstream = netConnect(port, "127.0.0.1");
      client.once("data", (first: Buffer) => {
        upstream.write(first.subarray(0, 5));
        setTimeout(() => {
          upstream.write(first.subarray(5));
          client.pipe(upstream);
          upstream.pipe(client);
        }, 30);
      });
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const session = http2.connect(proxyUrl);
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":path": "/" });
        let data = "";
        req.setEncoding("utf8");
        req.on("data", (c: string) => {
          data += c;
        });
        req.on("end", () => resolve(data));
        req.on("error", reject);
        req.end();
      });
      expect(body).toBe("v2.0");
      session.destroy();
      const res = await fetch(`${proxyUrl}/`, { headers: { connection: "close" } });
      expect(await res.text()).toBe("v1.1");
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it("destroys open connections on close", async () => {
    server = new ApiServer((_req, res) => res.end("ok"));
    const { url } = await server.listen(0, "127.0.0.1");
    const session = http2.connect(url);
    await new Promise((r) => session.once("connect", r));
    const closed = new Promise((r) => session.once("close", r));
    await server.close();
    await closed;
    expect(session.closed || session.destroyed).toBe(true);
  });
});
