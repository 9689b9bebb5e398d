import type { IncomingMessage, ServerResponse } from "node:http";
import * as http from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import { handleExpectContinue } from "./edge-server.js";
import { type Logger, silentLogger } from "./logger.js";
import type { TollgateCa } from "./tollgate-ca.js";

/** Host patterns the proxy serves by default: AWS's public endpoint domains. */
export const DEFAULT_PROXY_ALLOWED_HOSTS: readonly string[] = ["*.amazonaws.com", "*.amazonaws.com.cn", "*.api.aws"];

/** Options for {@link createProxyServer}. */
export interface ProxyServerOptions {
  /** The edge's request handler (`createEdgeRequestHandler`): every proxied AWS call goes through it. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Mints the certificates presented to clients for the AWS host names. */
  ca: TollgateCa;
  /**
   * Host patterns accepted for CONNECT and absolute-form requests: an exact name, or `*.domain`
   * for any name below `domain` (any depth, not `domain` itself). Default
   * {@link DEFAULT_PROXY_ALLOWED_HOSTS}.
   */
  allowedHosts?: readonly string[];
  logger?: Logger;
  /** Time a tunnel may take to complete its TLS handshake, in milliseconds. Default 10000. */
  handshakeTimeoutMs?: number;
}

type ResolvedProxyOptions = Required<ProxyServerOptions>;

function resolveProxyServerOptions(o: ProxyServerOptions): ResolvedProxyOptions {
  return {
    allowedHosts: DEFAULT_PROXY_ALLOWED_HOSTS,
    logger: silentLogger,
    handshakeTimeoutMs: 10_000,
    ...o,
  };
}

/** A proxy target: a host name (lower case, no trailing dot) and a port. */
interface ProxyTarget {
  host: string;
  port: number;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

/** Parses `host:port` (CONNECT's authority form); IP literals and odd names are rejected. */
function parseAuthority(authority: string, defaultPort: number): ProxyTarget | undefined {
  const m = /^([^:/?#@[\]\s]+)(?::(\d{1,5}))?$/.exec(authority);
  if (m === null) return undefined;
  const host = (m[1] as string).toLowerCase().replace(/\.$/, "");
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!HOST_NAME.test(host) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** Whether `host` matches one of the patterns (`*.domain` or an exact name). */
export function proxyHostAllowed(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  for (const raw of patterns) {
    const p = raw.trim().toLowerCase();
    if (p.startsWith("*.")) {
      if (h.endsWith(p.slice(1)) && h.length > p.length - 1) return true;
    } else if (p !== "" && h === p) {
      return true;
    }
  }
  return false;
}

function refuseSocket(socket: Duplex, status: number, reason: string, body: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function refuseResponse(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  res.end(body);
}

/**
 * Creates the edge's HTTPS_PROXY server (not listening; call `listen()`), for clients with
 * hard-coded AWS endpoints:
 *
 * - `CONNECT host:443` to an allowed AWS host: TLS is terminated here with a Tollgate CA
 *   certificate for exactly that host, and the requests inside go to `handler` with their
 *   original `Host` (so SigV4 and virtual-hosted S3 work unchanged). No tunnel is ever opened
 *   to the host itself: the edge, not the client, decides where a call goes.
 * - `GET http://host/...` (absolute form, `HTTP_PROXY`) to an allowed AWS host on port 80:
 *   handled the same way without TLS.
 * - Anything else (other hosts, other ports, IP literals, origin-form requests) is refused with
 *   403 (400 for malformed targets) and a plain-text reason. A refusal is not an AWS call, so
 *   it is logged, not audited.
 */
export function createProxyServer(options: ProxyServerOptions): http.Server {
  const o = resolveProxyServerOptions(options);
  /** The CONNECT target of each TLS tunnel, to check the Host of the requests inside it. */
  const tunnelHosts = new WeakMap<object, string>();

  const refused = (what: string, target: string, peer: string | undefined, why: string): void => {
    // Never the query: a presigned URL carries its signature and session token there.
    const safeTarget = (target.split("?")[0] ?? "").slice(0, 300);
    o.logger.info({ event: "proxy-refused", method: what, target: safeTarget, peer, why }, "proxy refused");
  };

  // Parses requests arriving inside TLS tunnels; never listens itself.
  const innerHandler = (req: IncomingMessage, res: ServerResponse): void => {
    const tunnelHost = tunnelHosts.get(req.socket);
    const hostHeader = parseAuthority(String(req.headers.host ?? ""), 443);
    if (tunnelHost === undefined || hostHeader === undefined || hostHeader.host !== tunnelHost) {
      refused(req.method ?? "", String(req.headers.host ?? ""), req.socket.remoteAddress, "host-mismatch");
      req.resume();
      refuseResponse(res, 421, `Tollgate proxy: Host header does not match the tunnel to ${tunnelHost ?? "?"}.\n`);
      return;
    }
    o.handler(req, res);
  };
  const inner = http.createServer({ keepAlive: true, requestTimeout: 0 }, innerHandler);
  // `Expect: 100-continue` is answered by the edge handler only after authentication.
  handleExpectContinue(inner, innerHandler);
  inner.on("clientError", (_err, socket) => socket.destroy());

  const server = http.createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
    const url = req.url ?? "";
    if (!/^http:\/\//i.test(url)) {
      refused(
        req.method ?? "",
        url,
        req.socket.remoteAddress,
        /^https:/i.test(url) ? "https-absolute-form" : "not-a-proxy-request",
      );
      req.resume();
      refuseResponse(
        res,
        400,
        "Tollgate proxy: send AWS calls through this proxy (HTTPS_PROXY / HTTP_PROXY), or to the edge endpoint directly.\n",
      );
      return;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      refused(req.method ?? "", url, req.socket.remoteAddress, "bad-url");
      req.resume();
      refuseResponse(res, 400, "Tollgate proxy: malformed request target.\n");
      return;
    }
    const target = parseAuthority(parsed.host, 80);
    if (target === undefined || target.port !== 80 || !proxyHostAllowed(target.host, o.allowedHosts)) {
      refused(req.method ?? "", parsed.host, req.socket.remoteAddress, "host-not-allowed");
      req.resume();
      refuseResponse(
        res,
        403,
        `Tollgate proxy: ${parsed.host} is not an AWS endpoint this proxy serves; only ${o.allowedHosts.join(", ")} (port 80 over HTTP, 443 over CONNECT).\n`,
      );
      return;
    }
    const hostHeader = parseAuthority(String(req.headers.host ?? ""), 80);
    if (hostHeader === undefined || hostHeader.host !== target.host) {
      refused(req.method ?? "", parsed.host, req.socket.remoteAddress, "host-mismatch");
      req.resume();
      refuseResponse(res, 400, "Tollgate proxy: Host header does not match the request target.\n");
      return;
    }
    // The edge handler works on origin-form targets; the raw path and query are kept as sent.
    const rest = /^http:\/\/[^/?#]*([^#]*)/i.exec(url)?.[1] ?? "";
    req.url = rest.startsWith("/") ? rest : `/${rest}`;
    o.handler(req, res);
  });

  server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const authority = req.url ?? "";
    const peer = req.socket.remoteAddress;
    socket.on("error", () => socket.destroy());
    const target = parseAuthority(authority, 443);
    if (target === undefined) {
      refused("CONNECT", authority, peer, "bad-authority");
      refuseSocket(socket, 400, "Bad Request", "Tollgate proxy: CONNECT needs host:port.\n");
      return;
    }
    if (!proxyHostAllowed(target.host, o.allowedHosts)) {
      refused("CONNECT", authority, peer, "host-not-allowed");
      refuseSocket(
        socket,
        403,
        "Forbidden",
        `Tollgate proxy: ${target.host} is not an AWS endpoint this proxy serves; only ${o.allowedHosts.join(", ")}.\n`,
      );
      return;
    }
    if (target.port !== 443) {
      refused("CONNECT", authority, peer, "port-not-allowed");
      refuseSocket(socket, 403, "Forbidden", `Tollgate proxy: only port 443 is served for ${target.host}.\n`);
      return;
    }
    o.ca.secureContext(target.host).then(
      (secureContext) => {
        if (socket.destroyed) return;
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length > 0) socket.unshift(head);
        const tlsSocket = new tls.TLSSocket(socket as Socket, {
          isServer: true,
          secureContext,
          // Certificates are for the CONNECT host whatever SNI the client sends.
          ALPNProtocols: ["http/1.1"],
        });
        tunnelHosts.set(tlsSocket, target.host);
        const handshakeTimer = setTimeout(() => tlsSocket.destroy(), o.handshakeTimeoutMs);
        tlsSocket.once("secure", () => clearTimeout(handshakeTimer));
        tlsSocket.once("close", () => clearTimeout(handshakeTimer));
        tlsSocket.on("error", (err) => {
          o.logger.debug({ event: "proxy-tls-error", target: target.host, peer, err: err.message }, "proxy TLS error");
          tlsSocket.destroy();
        });
        inner.emit("connection", tlsSocket);
      },
      (err: unknown) => {
        o.logger.error(
          { event: "proxy-cert-error", target: target.host, err: err instanceof Error ? err.message : String(err) },
          "cannot mint a certificate",
        );
        refuseSocket(socket, 502, "Bad Gateway", "Tollgate proxy: cannot create a certificate for this host.\n");
      },
    );
  });

  server.on("clientError", (_err, socket) => socket.destroy());
  server.on("close", () => inner.close());
  return server;
}
