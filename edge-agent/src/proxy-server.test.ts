import { mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProxyServer, proxyHostAllowed } from "./proxy-server.js";
import { TollgateCa } from "./tollgate-ca.js";

let dir: string;
let ca: TollgateCa;
let proxy: http.Server;
let port: number;
const seen: Array<{ method: string; url: string; host: string; encrypted: boolean }> = [];
const logged: object[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tollgate-proxy-"));
  ca = await TollgateCa.loadOrCreate({ keyFile: join(dir, "ca-key.pem"), certFile: join(dir, "ca.pem") });
  proxy = createProxyServer({
    ca,
    logger: { debug() {}, info: (obj) => logged.push(obj), warn() {}, error() {} },
    handler: (req, res) => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        host: String(req.headers.host),
        encrypted: req.socket instanceof tls.TLSSocket,
      });
      res.end(`handled ${req.url}`);
    },
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  port = (proxy.address() as AddressInfo).port;
});

afterAll(async () => {
  proxy.closeAllConnections();
  await new Promise((r) => proxy.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** CONNECT, then the raw status line and body of the proxy's answer (no TLS). */
function connectStatus(authority: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "CONNECT", path: authority });
    req.once("connect", (res, socket, head: Buffer) => {
      let body = head.toString();
      socket.on("data", (d: Buffer) => {
        body += d.toString();
      });
      socket.on("close", () => resolve({ status: res.statusCode ?? 0, body }));
      if (res.statusCode === 200) socket.destroy();
    });
    req.once("error", reject);
    req.end();
  });
}

/** CONNECT to `authority`, TLS with the CA, then one HTTP/1.1 request with `hostHeader`. */
function throughTunnel(
  authority: string,
  hostHeader: string,
  path: string,
): Promise<{ status: number; body: string; cn: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "CONNECT", path: authority });
    req.once("connect", (res, socket) => {
      if (res.statusCode !== 200) return reject(new Error(`CONNECT ${res.statusCode}`));
      const servername = authority.split(":")[0] as string;
      const tlsSocket = tls.connect({ socket, servername, ca: ca.certificatePem });
      tlsSocket.once("error", reject);
      tlsSocket.once("secureConnect", () => {
        const cn = String(tlsSocket.getPeerCertificate().subjectaltname);
        const inner = http.request(
          { createConnection: () => tlsSocket, method: "GET", path, headers: { host: hostHeader } },
          (r) => {
            let body = "";
            r.on("data", (d: Buffer) => {
              body += d.toString();
            });
            r.on("end", () => {
              tlsSocket.destroy();
              resolve({ status: r.statusCode ?? 0, body, cn });
            });
          },
        );
        inner.once("error", reject);
        inner.end();
      });
    });
    req.once("error", reject);
    req.end();
  });
}

function plainRequest(path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "GET", path, headers: { host } }, (r) => {
      let body = "";
      r.on("data", (d: Buffer) => {
        body += d.toString();
      });
      r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

describe("proxyHostAllowed", () => {
  it("matches *.domain below the domain only, and exact names", () => {
    const p = ["*.amazonaws.com", "*.api.aws", "exact.example"];
    expect(proxyHostAllowed("s3.amazonaws.com", p)).toBe(true);
    expect(proxyHostAllowed("b.s3.us-east-1.amazonaws.com", p)).toBe(true);
    expect(proxyHostAllowed("S3.AMAZONAWS.COM.", p)).toBe(true);
    expect(proxyHostAllowed("amazonaws.com", p)).toBe(false);
    expect(proxyHostAllowed("evilamazonaws.com", p)).toBe(false);
    expect(proxyHostAllowed("s3.amazonaws.com.evil.example", p)).toBe(false);
    expect(proxyHostAllowed("exact.example", p)).toBe(true);
    expect(proxyHostAllowed("sub.exact.example", p)).toBe(false);
  });
});

describe("createProxyServer", () => {
  it("terminates TLS for an AWS host with a CA certificate and keeps the original Host", async () => {
    seen.length = 0;
    const r = await throughTunnel(
      "bucket.s3.us-east-1.amazonaws.com:443",
      "bucket.s3.us-east-1.amazonaws.com",
      "/k%20ey?x=1",
    );
    expect(r.status).toBe(200);
    expect(r.body).toBe("handled /k%20ey?x=1");
    expect(r.cn).toBe("DNS:bucket.s3.us-east-1.amazonaws.com");
    expect(seen).toEqual([
      { method: "GET", url: "/k%20ey?x=1", host: "bucket.s3.us-east-1.amazonaws.com", encrypted: true },
    ]);
  });

  it("refuses a Host inside the tunnel that differs from the CONNECT target", async () => {
    seen.length = 0;
    const r = await throughTunnel("sts.amazonaws.com:443", "example.com", "/");
    expect(r.status).toBe(421);
    expect(seen).toEqual([]);
  });

  it.each([
    ["example.com:443", 403, "example.com is not an AWS endpoint"],
    ["s3.amazonaws.com:8443", 403, "only port 443"],
    ["s3.amazonaws.com:80", 403, "only port 443"],
    ["127.0.0.1:443", 403, "not an AWS endpoint"],
    ["amazonaws.com.evil.example:443", 403, "not an AWS endpoint"],
    ["[::1]:443", 400, "host:port"],
  ])("CONNECT %s → %i", async (authority, status, text) => {
    seen.length = 0;
    const r = await connectStatus(authority);
    expect(r.status).toBe(status);
    expect(r.body).toContain(text);
    expect(seen).toEqual([]);
  });

  it("handles absolute-form HTTP requests to AWS hosts, refuses others", async () => {
    seen.length = 0;
    const ok = await plainRequest("http://dynamodb.us-east-1.amazonaws.com/?a=b", "dynamodb.us-east-1.amazonaws.com");
    expect(ok).toEqual({ status: 200, body: "handled /?a=b" });
    expect(seen).toEqual([{ method: "GET", url: "/?a=b", host: "dynamodb.us-east-1.amazonaws.com", encrypted: false }]);
    seen.length = 0;
    const other = await plainRequest("http://example.com/", "example.com");
    expect(other.status).toBe(403);
    expect(other.body).toContain("example.com is not an AWS endpoint");
    const port8080 = await plainRequest("http://s3.amazonaws.com:8080/", "s3.amazonaws.com:8080");
    expect(port8080.status).toBe(403);
    const originForm = await plainRequest(
      "/b/k?X-Amz-Signature=abc&X-Amz-Security-Token=tg1.secret",
      "s3.amazonaws.com",
    );
    expect(originForm.status).toBe(400);
    expect(seen).toEqual([]);
    expect(logged).toContainEqual(
      expect.objectContaining({ event: "proxy-refused", target: "/b/k", why: "not-a-proxy-request" }),
    );
    expect(JSON.stringify(logged)).not.toContain("tg1.secret");
  });
});
