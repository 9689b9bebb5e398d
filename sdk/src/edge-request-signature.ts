import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from "node:crypto";
import type { EdgeSigningKey } from "./audit-chain.js";

/** Headers an enrolled edge sends with every control-plane call. */
export const EDGE_AUTH_HEADERS = {
  /** Edge name. */
  edge: "x-tollgate-edge",
  /** Id of the enrolled key that signed. */
  keyId: "x-tollgate-key-id",
  /** Unix ms when the edge signed. */
  timestamp: "x-tollgate-timestamp",
  /** 16 random bytes, base64url: makes every signature unique for the replay cache. */
  nonce: "x-tollgate-nonce",
  /** Ed25519 signature over {@link edgeRequestSigningText}, base64url. */
  signature: "x-tollgate-signature",
} as const;

/** What an edge request signature covers. */
export interface EdgeRequestSigningInput {
  edgeName: string;
  keyId: string;
  /** `/<package.Service>/<Method>`, e.g. `/tollgate.edge.v1.EdgeService/GetEdgeConfig`. */
  procedure: string;
  timestampMs: number;
  nonce: string;
  /** Hex SHA-256 of the request message in protobuf binary encoding. */
  bodySha256: string;
}

/**
 * The text an edge signs: a fixed tag and the fields, one per line. The body is the request
 * message's protobuf binary encoding (deterministic for protobuf-es on both sides), so the
 * signature holds over any gRPC/Connect framing.
 */
export function edgeRequestSigningText(input: EdgeRequestSigningInput): string {
  return [
    "TOLLGATE-EDGE-REQUEST-V1",
    input.edgeName,
    input.keyId,
    input.procedure,
    String(input.timestampMs),
    input.nonce,
    input.bodySha256,
  ].join("\n");
}

/** Hex SHA-256 of a request body. */
export function edgeRequestBodySha256(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("hex");
}

/** Private keys parsed once per PEM (signing runs on every control-plane call). */
const privateKeys = new Map<string, KeyObject>();

/** Signs one request; returns the headers to send ({@link EDGE_AUTH_HEADERS}). */
export function signEdgeRequest(
  key: EdgeSigningKey,
  edgeName: string,
  procedure: string,
  body: Uint8Array,
  nowMs: number = Date.now(),
): Record<string, string> {
  let privateKey = privateKeys.get(key.privateKeyPem);
  if (privateKey === undefined) {
    privateKey = createPrivateKey(key.privateKeyPem);
    privateKeys.set(key.privateKeyPem, privateKey);
  }
  const nonce = randomBytes(16).toString("base64url");
  const text = edgeRequestSigningText({
    edgeName,
    keyId: key.keyId,
    procedure,
    timestampMs: nowMs,
    nonce,
    bodySha256: edgeRequestBodySha256(body),
  });
  return {
    [EDGE_AUTH_HEADERS.edge]: edgeName,
    [EDGE_AUTH_HEADERS.keyId]: key.keyId,
    [EDGE_AUTH_HEADERS.timestamp]: String(nowMs),
    [EDGE_AUTH_HEADERS.nonce]: nonce,
    [EDGE_AUTH_HEADERS.signature]: sign(null, Buffer.from(text), privateKey).toString("base64url"),
  };
}

/** True when `signature` (base64url) is a valid Ed25519 signature of `text` by `publicKeyPem`. */
export function verifyEdgeRequestSignature(publicKeyPem: string, text: string, signature: string): boolean {
  try {
    return verify(null, Buffer.from(text), createPublicKey(publicKeyPem), Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}
