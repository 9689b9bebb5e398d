import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { CapturedRequest } from "./capture-proxy.js";

/** SHA-256 on node crypto for @smithy/signature-v4. */
export class NodeSha256 {
  #h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h = secret === undefined ? createHash("sha256") : createHmac("sha256", toKey(secret));
  }
  update(d: Uint8Array): void {
    this.#h.update(d);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#h.digest());
  }
  reset(): void {}
}

/**
 * Recomputes, with `@smithy/signature-v4`, the header signature of a request as the upstream
 * received it (raw path, decoded query, the headers its `SignedHeaders` names, the declared
 * payload hash) and returns both, so a test can check the edge's re-signing independently of
 * moto's verifier.
 */
export async function recomputeSignature(
  captured: CapturedRequest,
  credentials: { accessKeyId: string; secretAccessKey: string },
  region: string,
  service = "s3",
): Promise<{ sent: string; expected: string; signedHeaders: string[] }> {
  const authorization = String(captured.headers.authorization ?? "");
  const m = /SignedHeaders=([^,]+), Signature=([0-9a-f]{64})/.exec(authorization);
  if (m === null) throw new Error(`no SigV4 Authorization upstream: ${authorization}`);
  const signedHeaders = (m[1] as string).split(";");
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = String(captured.headers[name] ?? "");
  const q = captured.url.indexOf("?");
  const path = q === -1 ? captured.url : captured.url.slice(0, q);
  const query: Record<string, string | string[]> = {};
  if (q !== -1) {
    for (const part of captured.url.slice(q + 1).split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const k = decodeURIComponent(eq === -1 ? part : part.slice(0, eq));
      const v = eq === -1 ? "" : decodeURIComponent(part.slice(eq + 1));
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
  }
  const amzDate = headers["x-amz-date"] ?? "";
  const signingDate = new Date(
    Date.UTC(
      Number(amzDate.slice(0, 4)),
      Number(amzDate.slice(4, 6)) - 1,
      Number(amzDate.slice(6, 8)),
      Number(amzDate.slice(9, 11)),
      Number(amzDate.slice(11, 13)),
      Number(amzDate.slice(13, 15)),
    ),
  );
  const host = headers.host ?? "";
  const signer = new SignatureV4({
    credentials,
    region,
    service,
    sha256: NodeSha256,
    uriEscapePath: service !== "s3",
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: captured.method,
      protocol: "http:",
      hostname: host.split(":")[0] ?? host,
      path,
      query,
      headers,
      ...(headers["x-amz-content-sha256"] === undefined ? { body: captured.body } : {}),
    },
    { signingDate },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? "";
  return { sent: m[2] as string, expected, signedHeaders };
}

function toKey(secret: string | ArrayBuffer | ArrayBufferView): string | Buffer {
  if (typeof secret === "string") return secret;
  if (ArrayBuffer.isView(secret)) return Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  return Buffer.from(secret);
}
