import type { IncomingHttpHeaders } from "node:http";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the upstream received it. */
export interface CapturedRequest {
  method: string;
  /** Raw request target (path and query) as received. */
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** The body, up to `maxBodyBytes` (see `bodyBytes` for the full size). */
  body: Buffer;
  bodyBytes: number;
  /** Whether the whole body arrived (false when the sender aborted it). */
  complete: boolean;
  status?: number;
}

/** An HTTP proxy in front of an upstream that records what it was sent. */
export interface CaptureProxy {
  url: string;
  requests: CapturedRequest[];
  close(): Promise<void>;
}

/**
 * Starts a recording pass-through in front of `target` (e.g. a non-verifying moto): the edge's
 * upstream requests can then be checked byte for byte (path, query, headers, signatures). An
 * aborted request body is aborted upstream too.
 */
export async function startCaptureProxy(target: string, maxBodyBytes = 8 * 1024 * 1024): Promise<CaptureProxy> {
  const t = new URL(target);
  const requests: CapturedRequest[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const captured: CapturedRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      bodyBytes: 0,
      complete: false,
    };
    requests.push(captured);
    const pieces: Buffer[] = [];
    let kept = 0;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== "connection") headers[k] = v;
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers, agent },
      (upRes) => {
        captured.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.on("data", (chunk: Buffer) => {
      captured.bodyBytes += chunk.length;
      if (kept < maxBodyBytes) {
        pieces.push(chunk);
        kept += chunk.length;
      }
      if (!up.write(chunk)) {
        req.pause();
        up.once("drain", () => req.resume());
      }
    });
    req.on("end", () => {
      captured.complete = true;
      captured.body = Buffer.concat(pieces);
      up.end();
    });
    req.on("close", () => {
      captured.body = Buffer.concat(pieces);
      if (!req.complete) up.destroy(new Error("sender aborted"));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
