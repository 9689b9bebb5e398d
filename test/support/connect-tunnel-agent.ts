import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";

/**
 * An `https.Agent` that reaches every host through an HTTP proxy's CONNECT tunnel, then speaks
 * TLS to the host over it (verifying with `ca`), as curl or botocore do with `HTTPS_PROXY`.
 * AWS SDK v3 for JavaScript ignores `HTTPS_PROXY`; give it this agent as `httpsAgent` of a
 * `NodeHttpHandler`.
 */
export class ConnectTunnelAgent extends https.Agent {
  readonly #proxy: URL;
  /** CONNECT authorities requested, in order (for assertions). */
  readonly tunnels: string[] = [];

  constructor(proxyUrl: string, options: https.AgentOptions) {
    super({ keepAlive: true, ...options });
    this.#proxy = new URL(proxyUrl);
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.hostname ?? options.host ?? "";
    const port = Number(options.port ?? 443);
    const authority = `${host}:${port}`;
    this.tunnels.push(authority);
    const req = http.request({
      host: this.#proxy.hostname,
      port: Number(this.#proxy.port),
      method: "CONNECT",
      path: authority,
      headers: { host: authority },
    });
    req.once("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback?.(new Error(`proxy refused CONNECT ${authority}: HTTP ${res.statusCode}`), socket);
        return;
      }
      const tlsSocket = tls.connect({
        socket,
        servername: host,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        ...(this.options.ca !== undefined ? { ca: this.options.ca } : {}),
        ALPNProtocols: ["http/1.1"],
      });
      callback?.(null, tlsSocket);
    });
    req.once("error", (err) => callback?.(err, req.socket as Duplex));
    req.end();
    return undefined;
  }
}

/** Sends a raw CONNECT to the proxy and returns the status and body of its answer. */
export function rawConnect(proxyUrl: string, authority: string): Promise<{ status: number; body: string }> {
  const proxy = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname,
      port: Number(proxy.port),
      method: "CONNECT",
      path: authority,
      headers: { host: authority },
    });
    req.once("connect", (res, socket, head: Buffer) => {
      let body = head.toString();
      socket.on("data", (d: Buffer) => {
        body += d.toString();
      });
      socket.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      socket.on("error", reject);
      if (res.statusCode === 200) socket.end();
    });
    req.once("error", reject);
    req.end();
  });
}
