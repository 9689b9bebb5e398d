import { describe, expect, it } from "vitest";
import { generateEdgeSigningKey } from "./audit-chain.js";
import {
  EDGE_AUTH_HEADERS,
  edgeRequestBodySha256,
  edgeRequestSigningText,
  signEdgeRequest,
  verifyEdgeRequestSignature,
} from "./edge-request-signature.js";

const PROCEDURE = "/tollgate.edge.v1.EdgeService/GetEdgeConfig";

function textOf(headers: Record<string, string>, body: Uint8Array, procedure = PROCEDURE): string {
  return edgeRequestSigningText({
    edgeName: headers[EDGE_AUTH_HEADERS.edge] as string,
    keyId: headers[EDGE_AUTH_HEADERS.keyId] as string,
    procedure,
    timestampMs: Number(headers[EDGE_AUTH_HEADERS.timestamp]),
    nonce: headers[EDGE_AUTH_HEADERS.nonce] as string,
    bodySha256: edgeRequestBodySha256(body),
  });
}

describe("edge request signatures", () => {
  const key = generateEdgeSigningKey();
  const body = new TextEncoder().encode("request");

  it("verify with the signer's public key over the same method, time, nonce and body", () => {
    const headers = signEdgeRequest(key, "edge-a", PROCEDURE, body, 1_700_000_000_000);
    expect(headers[EDGE_AUTH_HEADERS.timestamp]).toBe("1700000000000");
    expect(headers[EDGE_AUTH_HEADERS.keyId]).toBe(key.keyId);
    expect(headers[EDGE_AUTH_HEADERS.nonce]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const signature = headers[EDGE_AUTH_HEADERS.signature] as string;
    expect(verifyEdgeRequestSignature(key.publicKeyPem, textOf(headers, body), signature)).toBe(true);
  });

  it("fail for another body, method, key or a garbled signature", () => {
    const headers = signEdgeRequest(key, "edge-a", PROCEDURE, body);
    const signature = headers[EDGE_AUTH_HEADERS.signature] as string;
    const other = generateEdgeSigningKey();
    expect(verifyEdgeRequestSignature(key.publicKeyPem, textOf(headers, new Uint8Array([1])), signature)).toBe(false);
    expect(verifyEdgeRequestSignature(key.publicKeyPem, textOf(headers, body, "/x.Y/RevokeEdge"), signature)).toBe(
      false,
    );
    expect(verifyEdgeRequestSignature(other.publicKeyPem, textOf(headers, body), signature)).toBe(false);
    expect(verifyEdgeRequestSignature(key.publicKeyPem, textOf(headers, body), "AAAA")).toBe(false);
    expect(verifyEdgeRequestSignature("not a key", textOf(headers, body), signature)).toBe(false);
  });

  it("never repeat a nonce", () => {
    const a = signEdgeRequest(key, "edge-a", PROCEDURE, body, 1);
    const b = signEdgeRequest(key, "edge-a", PROCEDURE, body, 1);
    expect(a[EDGE_AUTH_HEADERS.nonce]).not.toBe(b[EDGE_AUTH_HEADERS.nonce]);
    expect(a[EDGE_AUTH_HEADERS.signature]).not.toBe(b[EDGE_AUTH_HEADERS.signature]);
  });
});
