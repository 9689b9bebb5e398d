import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type AuditEvent, type Checkpoint, CheckpointSchema } from "@tollgate/proto";
import { auditEventToBinary } from "./audit-codec.js";

/**
 * Tamper evidence for audit events. Each edge numbers its events 1, 2, 3, ... and chains them:
 *
 *   hash = hex(SHA-256( prevHash ‖ 0x00 ‖ protobuf-binary(event with tollgate.hash = "") ))
 *
 * where prevHash is the previous event's hash ("" for sequence 1). Protobuf binary encoding is
 * deterministic for a given message, and survives the JSON round trip on the stream. At least
 * every 10 s the edge signs its chain head with Ed25519 (a {@link Checkpoint}), so dropping,
 * altering, reordering or forging events, or truncating the chain, is detectable.
 */

/** Computes an event's chain hash from its content and its `tollgate.prevHash`. */
export function computeEventHash(event: AuditEvent): string {
  const t = event.tollgate;
  // Hash the event as it is with tollgate.hash = "" (set and restored in place: no copy).
  const saved = t?.hash ?? "";
  if (t !== undefined) t.hash = "";
  try {
    return createHash("sha256")
      .update(t?.prevHash ?? "", "utf8")
      .update(ZERO)
      .update(auditEventToBinary(event))
      .digest("hex");
  } finally {
    if (t !== undefined) t.hash = saved;
  }
}

const ZERO = Buffer.from([0]);

/** Sets `sequence`, `prevHash` and `hash` on an event, in place, and returns the new hash. */
export function chainEvent(event: AuditEvent, sequence: bigint, prevHash: string): string {
  if (event.tollgate === undefined) throw new Error("event has no tollgate context");
  event.tollgate.sequence = sequence;
  event.tollgate.prevHash = prevHash;
  event.tollgate.hash = "";
  const hash = computeEventHash(event);
  event.tollgate.hash = hash;
  return hash;
}

/** The exact text an edge signs for a checkpoint. */
export function checkpointSigningText(c: Pick<Checkpoint, "edge" | "sequence" | "hash" | "time" | "keyId">): string {
  return `tollgate-checkpoint-v1\n${c.edge}\n${c.sequence.toString()}\n${c.hash}\n${c.time}\n${c.keyId}`;
}

/** An Ed25519 key pair for an edge; PEM-encoded for storage. */
export interface EdgeSigningKey {
  keyId: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** Creates a new Ed25519 edge key. `keyId` is the first 16 hex chars of SHA-256(public key DER). */
export function generateEdgeSigningKey(): EdgeSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    keyId: edgeKeyId(publicKey),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Key id of a public key (PEM or KeyObject). */
export function edgeKeyId(publicKey: string | KeyObject): string {
  const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
  return createHash("sha256")
    .update(key.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

/** Signs a checkpoint for the chain head. */
export function signCheckpoint(
  key: EdgeSigningKey,
  head: { edge: string; sequence: bigint; hash: string; time?: string },
): Checkpoint {
  const c = create(CheckpointSchema, {
    edge: head.edge,
    sequence: head.sequence,
    hash: head.hash,
    time: head.time ?? new Date().toISOString(),
    keyId: key.keyId,
  });
  c.signature = sign(null, Buffer.from(checkpointSigningText(c)), createPrivateKey(key.privateKeyPem)).toString(
    "base64",
  );
  return c;
}

/** Verifies a checkpoint's signature with the edge's registered public key (PEM). */
export function verifyCheckpoint(checkpoint: Checkpoint, publicKeyPem: string): boolean {
  if (edgeKeyId(publicKeyPem) !== checkpoint.keyId) return false;
  try {
    return verify(
      null,
      Buffer.from(checkpointSigningText(checkpoint)),
      createPublicKey(publicKeyPem),
      Buffer.from(checkpoint.signature, "base64"),
    );
  } catch {
    return false;
  }
}

/** What {@link ChainVerifier} found wrong. */
export type ChainProblemKind = "gap" | "fork" | "bad-hash" | "reordered" | "bad-checkpoint" | "checkpoint-mismatch";

/** One problem, naming the first bad event or checkpoint. */
export interface ChainProblem {
  kind: ChainProblemKind;
  edge: string;
  sequence: bigint;
  eventId?: string;
  detail: string;
}

/**
 * Verifies per-edge chains incrementally, in stream order: each event's hash must match its
 * content, its prevHash must equal the previous event's hash and its sequence must be the next
 * one; each checkpoint must verify with the edge's key and match the chain at its sequence.
 */
export class ChainVerifier {
  readonly #heads = new Map<string, { sequence: bigint; hash: string }>();
  /** Hashes by sequence of recent events per edge, for checkpoint matching. */
  readonly #recent = new Map<string, Map<bigint, string>>();

  constructor(
    private readonly publicKeyFor: (edge: string, keyId: string) => string | undefined,
    private readonly recentWindow = 100_000,
  ) {}

  /** Last verified head per edge. */
  head(edge: string): { sequence: bigint; hash: string } | undefined {
    return this.#heads.get(edge);
  }

  /** Checks the next event; returns the problems found (empty when it extends the chain). */
  addEvent(event: AuditEvent): ChainProblem[] {
    const t = event.tollgate;
    const edge = t?.edge ?? "";
    const sequence = t?.sequence ?? 0n;
    const problems: ChainProblem[] = [];
    const at = { edge, sequence, eventId: event.eventId };
    if (t === undefined || t.hash === "") {
      return [{ kind: "bad-hash", ...at, detail: "event carries no chain hash" }];
    }
    if (computeEventHash(event) !== t.hash) {
      problems.push({ kind: "bad-hash", ...at, detail: "content does not match its hash (altered or forged)" });
    }
    const head = this.#heads.get(edge);
    const expectedSeq = (head?.sequence ?? 0n) + 1n;
    if (head !== undefined || sequence !== 1n) {
      if (sequence < expectedSeq) {
        const seen = this.#recent.get(edge)?.get(sequence);
        problems.push({
          kind: seen !== undefined && seen !== t.hash ? "fork" : "reordered",
          ...at,
          detail: `sequence ${sequence} arrived after ${expectedSeq - 1n}`,
        });
        return problems;
      }
      if (sequence > expectedSeq) {
        problems.push({ kind: "gap", ...at, detail: `events ${expectedSeq}..${sequence - 1n} are missing` });
      } else if (head !== undefined && t.prevHash !== head.hash) {
        problems.push({ kind: "fork", ...at, detail: "prevHash does not match the previous event's hash" });
      }
    }
    if (problems.every((p) => p.kind === "gap")) {
      this.#heads.set(edge, { sequence, hash: t.hash });
      let recent = this.#recent.get(edge);
      if (recent === undefined) {
        recent = new Map();
        this.#recent.set(edge, recent);
      }
      recent.set(sequence, t.hash);
      if (recent.size > this.recentWindow) {
        const first = recent.keys().next().value;
        if (first !== undefined) recent.delete(first);
      }
    }
    return problems;
  }

  /** Checks a checkpoint against the edge key and the chain seen so far. */
  addCheckpoint(checkpoint: Checkpoint): ChainProblem[] {
    const at = { edge: checkpoint.edge, sequence: checkpoint.sequence };
    const pem = this.publicKeyFor(checkpoint.edge, checkpoint.keyId);
    if (pem === undefined || !verifyCheckpoint(checkpoint, pem)) {
      return [{ kind: "bad-checkpoint", ...at, detail: "signature does not verify with a registered edge key" }];
    }
    if (checkpoint.sequence === 0n) return [];
    const seen = this.#recent.get(checkpoint.edge)?.get(checkpoint.sequence);
    if (seen === undefined) {
      const head = this.#heads.get(checkpoint.edge);
      if (head === undefined || head.sequence < checkpoint.sequence) {
        return [
          {
            kind: "gap",
            ...at,
            detail: `checkpoint covers sequence ${checkpoint.sequence} but events only reached ${head?.sequence ?? 0n}`,
          },
        ];
      }
      return [];
    }
    if (seen !== checkpoint.hash) {
      return [{ kind: "checkpoint-mismatch", ...at, detail: "chain differs from what the edge signed" }];
    }
    return [];
  }
}
