/** Requests a presigned URL the way a plain HTTP client would, in the row's mode. */
import * as https from "node:https";
import { rootCertificates } from "node:tls";
import { ConnectTunnelAgent } from "../../support/connect-tunnel-agent.js";
import type { CompatContext, CompatProxy } from "../compat-case.js";

/**
 * A CONNECT agent through the edge's proxy that trusts the public roots plus the Tollgate CA (what
 * NODE_EXTRA_CA_CERTS=$TOLLGATE_HOME/ca.pem gives a Node process).
 */
export function proxyAgent(proxy: CompatProxy): ConnectTunnelAgent {
  return new ConnectTunnelAgent(proxy.url, { ca: [...rootCertificates, proxy.caPem] });
}

/**
 * Fetches `url` (no AWS signing of its own): with `fetch` in endpoint mode, through the CONNECT proxy in
 * proxy mode (Node's fetch ignores HTTPS_PROXY). Returns the status and body text.
 */
export async function fetchUrl(
  url: string,
  init: { method: "GET" | "PUT"; body?: string },
  ctx: CompatContext,
): Promise<{ status: number; text: string }> {
  if (ctx.mode === "endpoint") {
    const res = await fetch(url, { method: init.method, ...(init.body === undefined ? {} : { body: init.body }) });
    return { status: res.status, text: await res.text() };
  }
  const agent = proxyAgent(ctx.proxy);
  try {
    return await new Promise((resolve, reject) => {
      const body = init.body === undefined ? undefined : Buffer.from(init.body);
      const req = https.request(
        url,
        {
          method: init.method,
          agent,
          headers: body === undefined ? {} : { "content-length": String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
          res.on("error", reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`timeout fetching ${new URL(url).host}`)));
      req.on("error", reject);
      req.end(body);
    });
  } finally {
    agent.destroy();
  }
}
