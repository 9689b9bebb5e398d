import { createHash } from "node:crypto";
import type { AuditEvent } from "@tollgate/proto";
import { auditEventToBinary, auditEventToJson, auditSubject } from "@tollgate/sdk";

/**
 * One encoding per audit event, reused by the journal, the hash chain and JetStream.
 *
 * The edge encodes a call's final event once, when it journals the completion: the protobuf
 * binary (what the chain hash covers) and the JSON that is published, both with the chain
 * fields (`tollgate.sequence`, `prevHash`, `hash`) still empty, plus the subject and message id.
 * The shipper assigns the chain fields later, in shipping order, by splicing them into those
 * bytes instead of decoding and re-encoding the event:
 *
 * - binary: `toBinary` writes fields in field-number order and omits empty proto3 scalars, so
 *   the chained event's encoding is the unchained one with `sequence` (13) and `prevHash` (14)
 *   inserted into the `tollgate` submessage (field 19) before its first field above 14, and the
 *   submessage's length prefix rewritten. {@link chainEncodedEvent} produces exactly the bytes
 *   `toBinary` gives for the chained event (checked in audit-wire.test.ts), so the control
 *   plane's `computeEventHash` of the published event still matches.
 * - JSON: `auditEventToJson` emits implicit fields, so the unchained JSON contains
 *   `"sequence":"0","prevHash":"","hash":""` in the `tollgate` object; the last occurrence is
 *   that one (every field after `tollgate` is a plain string, number, bool or a fixed-key
 *   object, so unescaped quotes cannot forge it there) and is replaced.
 *
 * When an encoding does not have the expected layout the splice declines (returns undefined)
 * and the caller decodes the binary and chains the event the slow way.
 */

/** A final event encoded once for journal, chain and JetStream. */
export interface EncodedAuditEvent {
  eventId: string;
  subjectPrefix: string;
  subject: string;
  /** `toBinary` of the event with empty chain fields. */
  binary: Uint8Array;
  /** `auditEventToJson` of the event with empty chain fields. */
  json: string;
}

/** Encodes a final event (its chain fields must be empty). */
export function encodeAuditEvent(subjectPrefix: string, event: AuditEvent): EncodedAuditEvent {
  return {
    eventId: event.eventId,
    subjectPrefix,
    subject: auditSubject(subjectPrefix, {
      connection: event.tollgate?.connection ?? "",
      principal: event.userIdentity?.principalId ?? "",
      service: event.tollgate?.signingName ?? "",
      operation: event.eventName,
    }),
    binary: auditEventToBinary(event),
    json: auditEventToJson(event),
  };
}

/**
 * Journal payload of an {@link EncodedAuditEvent}:
 * u16 id length ‖ id ‖ u16 prefix length ‖ prefix ‖ u16 subject length ‖ subject ‖
 * u32 binary length ‖ binary ‖ JSON (UTF-8, to the end).
 */
export function encodeFinalPayload(e: EncodedAuditEvent): Buffer {
  const id = Buffer.from(e.eventId, "utf8");
  const prefix = Buffer.from(e.subjectPrefix, "utf8");
  const subject = Buffer.from(e.subject, "utf8");
  const jsonLen = Buffer.byteLength(e.json, "utf8");
  const out = Buffer.allocUnsafe(10 + id.length + prefix.length + subject.length + e.binary.length + jsonLen);
  let at = 0;
  at = out.writeUInt16BE(id.length, at);
  at += id.copy(out, at);
  at = out.writeUInt16BE(prefix.length, at);
  at += prefix.copy(out, at);
  at = out.writeUInt16BE(subject.length, at);
  at += subject.copy(out, at);
  at = out.writeUInt32BE(e.binary.length, at);
  out.set(e.binary, at);
  at += e.binary.length;
  out.write(e.json, at, "utf8");
  return out;
}

/** Decodes {@link encodeFinalPayload}. */
export function decodeFinalPayload(payload: Buffer): EncodedAuditEvent {
  let at = 0;
  const idLen = payload.readUInt16BE(at);
  const eventId = payload.toString("utf8", at + 2, at + 2 + idLen);
  at += 2 + idLen;
  const prefixLen = payload.readUInt16BE(at);
  const subjectPrefix = payload.toString("utf8", at + 2, at + 2 + prefixLen);
  at += 2 + prefixLen;
  const subjectLen = payload.readUInt16BE(at);
  const subject = payload.toString("utf8", at + 2, at + 2 + subjectLen);
  at += 2 + subjectLen;
  const binLen = payload.readUInt32BE(at);
  const binary = payload.subarray(at + 4, at + 4 + binLen);
  const json = payload.toString("utf8", at + 4 + binLen);
  return { eventId, subjectPrefix, subject, binary, json };
}

/** A chained encoding: the hash and the JSON to publish. */
export interface ChainedEncoding {
  hash: string;
  json: string;
}

const TOLLGATE_FIELD = 19;
const EMPTY_CHAIN_JSON = '"sequence":"0","prevHash":"","hash":""';

/**
 * Chains an encoded event as `chainEvent` would (sequence, prevHash, hash), working on its
 * bytes. Returns undefined when the encoding does not have the expected layout.
 */
export function chainEncodedEvent(
  e: EncodedAuditEvent,
  sequence: bigint,
  prevHash: string,
): ChainedEncoding | undefined {
  if (sequence <= 0n) return undefined;
  const jsonAt = e.json.lastIndexOf(EMPTY_CHAIN_JSON);
  if (jsonAt < 0) return undefined;
  const bin = e.binary;
  const top = findField(bin, 0, bin.length, TOLLGATE_FIELD);
  if (top === undefined || top.wireType !== 2) return undefined;
  // Where sequence (13) and prevHash (14) go: before the first tollgate field numbered above 14.
  let insertAt = top.end;
  for (let at = top.valueStart; at < top.end; ) {
    const f = readField(bin, at, top.end);
    if (f === undefined) return undefined;
    if (f.number >= 13 && f.number <= 15) return undefined; // already chained: not expected
    if (f.number > 15) {
      insertAt = at;
      break;
    }
    at = f.end;
  }
  const prev = Buffer.from(prevHash, "latin1");
  const chainFields: number[] = [(13 << 3) | 0];
  pushVarint(chainFields, sequence);
  if (prev.length > 0) {
    chainFields.push((14 << 3) | 2);
    pushVarint(chainFields, BigInt(prev.length));
  }
  const innerLen = top.end - top.valueStart + chainFields.length + prev.length;
  const head: number[] = [];
  pushVarint(head, BigInt((TOLLGATE_FIELD << 3) | 2));
  pushVarint(head, BigInt(innerLen));
  const hash = createHash("sha256")
    .update(prevHash, "utf8")
    .update(ZERO)
    .update(bin.subarray(0, top.start))
    .update(Uint8Array.from(head))
    .update(bin.subarray(top.valueStart, insertAt))
    .update(Uint8Array.from(chainFields))
    .update(prev)
    .update(bin.subarray(insertAt))
    .digest("hex");
  const json = `${e.json.slice(0, jsonAt)}"sequence":"${sequence}","prevHash":"${prevHash}","hash":"${hash}"${e.json.slice(jsonAt + EMPTY_CHAIN_JSON.length)}`;
  return { hash, json };
}

const ZERO = Buffer.from([0]);

interface WireField {
  number: number;
  wireType: number;
  /** Offset of the tag. */
  start: number;
  /** Offset of the value (for length-delimited fields: after the length). */
  valueStart: number;
  /** Offset just past the field. */
  end: number;
}

function findField(buf: Uint8Array, from: number, to: number, number: number): WireField | undefined {
  for (let at = from; at < to; ) {
    const f = readField(buf, at, to);
    if (f === undefined) return undefined;
    if (f.number === number) return f;
    if (f.number > number) return undefined;
    at = f.end;
  }
  return undefined;
}

function readField(buf: Uint8Array, start: number, to: number): WireField | undefined {
  const tag = readVarint(buf, start, to);
  if (tag === undefined) return undefined;
  const number = Math.floor(tag.value / 8);
  const wireType = tag.value % 8;
  let at = tag.end;
  switch (wireType) {
    case 0: {
      const v = readVarint(buf, at, to);
      if (v === undefined) return undefined;
      return { number, wireType, start, valueStart: at, end: v.end };
    }
    case 1:
      at += 8;
      break;
    case 2: {
      const len = readVarint(buf, at, to);
      if (len === undefined) return undefined;
      const end = len.end + len.value;
      if (end > to) return undefined;
      return { number, wireType, start, valueStart: len.end, end };
    }
    case 5:
      at += 4;
      break;
    default:
      return undefined;
  }
  if (at > to) return undefined;
  return { number, wireType, start, valueStart: tag.end, end: at };
}

/** A varint's value (exact up to 2^53; larger values are only skipped) and where it ends. */
function readVarint(buf: Uint8Array, at: number, to: number): { value: number; end: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < to && i < at + 10; i++) {
    const b = buf[i] as number;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return { value, end: i + 1 };
    scale *= 128;
  }
  return undefined;
}

function pushVarint(out: number[], v: bigint): void {
  let x = v;
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
}
