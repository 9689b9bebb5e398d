import { type JsonObject, type JsonValue, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  type AuditEvent,
  AuditEventSchema,
  Decision,
  type PayloadDigest,
  type TollgateContext,
  type UpstreamIdentity,
} from "@tollgate/proto";

/**
 * Audit event encoders for the per-call path: the same bytes as `toBinary(AuditEventSchema, e)`
 * and the same text as `toJsonString(AuditEventSchema, e, { alwaysEmitImplicit: true })`,
 * written field by field instead of through protobuf-es reflection (about 5x cheaper; the edge
 * encodes every call, the control plane hashes every event it ingests). audit-codec.test.ts
 * checks byte and text equality against protobuf-es on generated events.
 *
 * Anything the field-by-field writers do not expect (unknown fields carried by a decoded
 * message, a Struct value that is not plain JSON, a non-finite number) falls back to
 * protobuf-es, so the output is always what protobuf-es would give.
 */

/** Raised inside the fast writers; caught here and answered by protobuf-es. */
class Unexpected extends Error {}

/** Protobuf wire types used here. */
const WireType = { Varint: 0, Bit64: 1, LengthDelimited: 2 } as const;

/**
 * A protobuf writer into one reused scratch buffer: strings are written as UTF-8 straight into
 * it, and a nested message's length is patched in at `join()` (the bytes are shifted when the
 * length takes more or fewer bytes than reserved). protobuf-es's ScratchWriter allocates per
 * field and per nested message, which made it the largest single cost of an edge call.
 */
class ScratchWriter {
  static #scratch = Buffer.allocUnsafe(64 * 1024);
  #buf: Buffer;
  #pos = 0;
  readonly #forks: number[] = [];

  constructor() {
    this.#buf = ScratchWriter.#scratch;
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(bigger, 0, 0, this.#pos);
    this.#buf = bigger;
    ScratchWriter.#scratch = bigger;
  }

  #varint32(v: number): void {
    this.#room(5);
    while (v > 0x7f) {
      this.#buf[this.#pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#buf[this.#pos++] = v;
  }

  #varint64(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    if (u <= 0xffffffffn) {
      this.#varint32(Number(u));
      return;
    }
    this.#room(10);
    while (u > 0x7fn) {
      this.#buf[this.#pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.#buf[this.#pos++] = Number(u);
  }

  tag(no: number, wireType: number): this {
    this.#varint32(((no << 3) | wireType) >>> 0);
    return this;
  }

  string(s: string): this {
    // ASCII (most of an event's strings) is copied here: a Buffer.write call into C++ per field
    // cost more than the copy. Anything else is encoded by Buffer.write.
    const n = s.length;
    if (n < 43) {
      // Under 43 UTF-16 units a string is at most 126 bytes of UTF-8: one length byte, written after.
      this.#room(1 + 3 * n);
      const buf = this.#buf;
      const start = this.#pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      const len = i === n ? n : buf.write(s, start, "utf8");
      buf[this.#pos] = len;
      this.#pos = start + len;
      return this;
    }
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      const len = Buffer.byteLength(s, "utf8");
      this.#varint32(len);
      this.#room(len);
      this.#pos += this.#buf.write(s, this.#pos, len, "utf8");
      return this;
    }
    this.#varint32(n);
    this.#room(n);
    const buf = this.#buf;
    const start = this.#pos;
    for (let i = 0; i < n; i++) buf[start + i] = s.charCodeAt(i);
    this.#pos = start + n;
    return this;
  }

  bool(v: boolean): this {
    this.#varint32(v ? 1 : 0);
    return this;
  }

  int32(v: number): this {
    if (v >= 0) this.#varint32(v);
    else this.#varint64(BigInt(v));
    return this;
  }

  int64(v: bigint): this {
    this.#varint64(v);
    return this;
  }

  uint64(v: bigint): this {
    this.#varint64(v);
    return this;
  }

  double(v: number): this {
    this.#room(8);
    this.#buf.writeDoubleLE(v, this.#pos);
    this.#pos += 8;
    return this;
  }

  /** Starts a length-delimited nested message (its tag is already written). */
  fork(): this {
    this.#room(2);
    this.#forks.push(this.#pos);
    this.#pos += 2; // room for a length up to 16383; fixed up in join()
    return this;
  }

  join(): this {
    const at = this.#forks.pop() as number;
    const start = at + 2;
    const len = this.#pos - start;
    const width = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    if (width !== 2) {
      this.#room(width);
      this.#buf.copyWithin(at + width, start, this.#pos);
      this.#pos += width - 2;
    }
    let v = len;
    let i = at;
    while (v > 0x7f) {
      this.#buf[i++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#buf[i] = v;
    return this;
  }

  /** A copy of what was written (the scratch buffer is reused by the next writer). */
  finish(): Uint8Array {
    return new Uint8Array(this.#buf.subarray(0, this.#pos));
  }
}

/** `toBinary(AuditEventSchema, event)`. */
export function auditEventToBinary(event: AuditEvent): Uint8Array {
  try {
    return writeAuditEvent(new ScratchWriter(), event).finish();
  } catch (err) {
    if (err instanceof Unexpected) return toBinary(AuditEventSchema, event);
    throw err;
  }
}

/** `toJsonString(AuditEventSchema, event, { alwaysEmitImplicit: true })`. */
export function auditEventToJsonString(event: AuditEvent): string {
  try {
    return JSON.stringify(auditEventJsonValue(event));
  } catch (err) {
    if (err instanceof Unexpected) return toJsonString(AuditEventSchema, event, { alwaysEmitImplicit: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------- binary

const LD = WireType.LengthDelimited;

function noUnknown(m: { $unknown?: unknown[] }): void {
  if (m.$unknown !== undefined && m.$unknown.length > 0) throw new Unexpected();
}

function str(w: ScratchWriter, no: number, v: string): void {
  if (v !== "") w.tag(no, LD).string(v);
}

function writeAuditEvent(w: ScratchWriter, e: AuditEvent): ScratchWriter {
  noUnknown(e);
  str(w, 1, e.eventVersion);
  str(w, 2, e.eventId);
  str(w, 3, e.eventTime);
  str(w, 4, e.eventSource);
  str(w, 5, e.eventName);
  str(w, 6, e.awsRegion);
  str(w, 7, e.sourceIpAddress);
  str(w, 8, e.userAgent);
  if (e.userIdentity !== undefined) {
    const u = e.userIdentity;
    noUnknown(u);
    w.tag(9, LD).fork();
    str(w, 1, u.type);
    str(w, 2, u.principalId);
    str(w, 3, u.accessKeyId);
    w.join();
  }
  if (e.requestParameters !== undefined) writeStruct(w.tag(10, LD).fork(), e.requestParameters).join();
  if (e.responseElements !== undefined) writeStruct(w.tag(11, LD).fork(), e.responseElements).join();
  if (e.errorCode !== undefined) w.tag(12, LD).string(e.errorCode);
  if (e.errorMessage !== undefined) w.tag(13, LD).string(e.errorMessage);
  str(w, 14, e.requestId);
  if (e.readOnly) w.tag(15, WireType.Varint).bool(true);
  for (const r of e.resources) {
    noUnknown(r);
    w.tag(16, LD).fork();
    str(w, 1, r.arn);
    str(w, 2, r.type);
    w.join();
  }
  str(w, 17, e.eventType);
  str(w, 18, e.recipientAccountId);
  if (e.tollgate !== undefined) writeTollgate(w.tag(19, LD).fork(), e.tollgate).join();
  str(w, 20, e.eventCategory);
  if (e.managementEvent) w.tag(21, WireType.Varint).bool(true);
  if (e.tlsDetails !== undefined) {
    const t = e.tlsDetails;
    noUnknown(t);
    w.tag(22, LD).fork();
    str(w, 1, t.tlsVersion);
    str(w, 2, t.cipherSuite);
    str(w, 3, t.clientProvidedHostHeader);
    w.join();
  }
  return w;
}

function writeDigest(w: ScratchWriter, d: PayloadDigest): ScratchWriter {
  noUnknown(d);
  if (d.size !== 0n) w.tag(1, WireType.Varint).int64(d.size);
  str(w, 2, d.sha256);
  return w;
}

function writeUpstream(w: ScratchWriter, u: UpstreamIdentity): ScratchWriter {
  noUnknown(u);
  str(w, 1, u.source);
  str(w, 2, u.accessKeyId);
  str(w, 3, u.roleArn);
  str(w, 4, u.assumedRoleArn);
  str(w, 5, u.sessionName);
  str(w, 6, u.sourceIdentity);
  return w;
}

function writeTollgate(w: ScratchWriter, t: TollgateContext): ScratchWriter {
  noUnknown(t);
  str(w, 1, t.connection);
  str(w, 2, t.edge);
  if (t.decision !== 0) w.tag(3, WireType.Varint).int32(t.decision);
  str(w, 4, t.reason);
  if (!Object.is(t.durationMs, 0)) w.tag(5, WireType.Bit64).double(t.durationMs);
  if (t.httpStatus !== 0) w.tag(6, WireType.Varint).int32(t.httpStatus);
  if (t.bytesIn !== 0n) w.tag(7, WireType.Varint).int64(t.bytesIn);
  if (t.bytesOut !== 0n) w.tag(8, WireType.Varint).int64(t.bytesOut);
  str(w, 9, t.signingName);
  str(w, 10, t.credentialId);
  str(w, 11, t.traceId);
  str(w, 12, t.authMethod);
  if (t.sequence !== 0n) w.tag(13, WireType.Varint).uint64(t.sequence);
  str(w, 14, t.prevHash);
  str(w, 15, t.hash);
  if (t.requestParametersTruncated) w.tag(16, WireType.Varint).bool(true);
  if (t.responseElementsTruncated) w.tag(17, WireType.Varint).bool(true);
  if (t.requestPayload !== undefined) writeDigest(w.tag(18, LD).fork(), t.requestPayload).join();
  if (t.responsePayload !== undefined) writeDigest(w.tag(19, LD).fork(), t.responsePayload).join();
  str(w, 20, t.outcome);
  str(w, 21, t.spanId);
  if (t.upstreamIdentity !== undefined) writeUpstream(w.tag(31, LD).fork(), t.upstreamIdentity).join();
  return w;
}

/** google.protobuf.Struct: `map<string, Value> fields = 1`, entries in `Object.entries` order. */
function writeStruct(w: ScratchWriter, o: JsonObject): ScratchWriter {
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Unexpected();
  for (const [k, v] of Object.entries(o)) {
    w.tag(1, LD).fork();
    w.tag(1, LD).string(k);
    writeValue(w.tag(2, LD).fork(), v).join();
    w.join();
  }
  return w;
}

/** google.protobuf.Value: null 1, number 2, string 3, bool 4, struct 5, list 6 (a oneof: always written). */
function writeValue(w: ScratchWriter, v: JsonValue): ScratchWriter {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw new Unexpected();
      return w.tag(2, WireType.Bit64).double(v);
    case "string":
      return w.tag(3, LD).string(v);
    case "boolean":
      return w.tag(4, WireType.Varint).bool(v);
    case "object":
      if (v === null) return w.tag(1, WireType.Varint).int32(0);
      if (Array.isArray(v)) {
        w.tag(6, LD).fork();
        for (const item of v) writeValue(w.tag(1, LD).fork(), item).join();
        return w.join();
      }
      return writeStruct(w.tag(5, LD).fork(), v).join();
    default:
      throw new Unexpected();
  }
}

// ------------------------------------------------------------------------------------ JSON

const DECISION_NAMES: Readonly<Record<number, string>> = {
  [Decision.UNSPECIFIED]: "DECISION_UNSPECIFIED",
  [Decision.ALLOW]: "DECISION_ALLOW",
  [Decision.DENY]: "DECISION_DENY",
};

function jsonDouble(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "Infinity";
  if (v === Number.NEGATIVE_INFINITY) return "-Infinity";
  return v;
}

/** A Struct's JSON: the object itself, checked to be plain finite JSON. */
function structJson(o: JsonObject): JsonObject {
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Unexpected();
  for (const v of Object.values(o)) checkJsonValue(v);
  return o;
}

function checkJsonValue(v: JsonValue): void {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw new Unexpected();
      return;
    case "string":
    case "boolean":
      return;
    case "object":
      if (v === null) return;
      if (Array.isArray(v)) {
        for (const item of v) checkJsonValue(item);
        return;
      }
      structJson(v);
      return;
    default:
      throw new Unexpected();
  }
}

function digestJson(d: PayloadDigest): Record<string, unknown> {
  noUnknown(d);
  return { size: String(d.size), sha256: d.sha256 };
}

function tollgateJson(t: TollgateContext): Record<string, unknown> {
  noUnknown(t);
  const decision = DECISION_NAMES[t.decision];
  const o: Record<string, unknown> = {
    connection: t.connection,
    edge: t.edge,
    decision: decision ?? t.decision,
    reason: t.reason,
    durationMs: jsonDouble(t.durationMs),
    httpStatus: t.httpStatus,
    bytesIn: String(t.bytesIn),
    bytesOut: String(t.bytesOut),
    signingName: t.signingName,
    credentialId: t.credentialId,
    traceId: t.traceId,
    authMethod: t.authMethod,
    sequence: String(t.sequence),
    prevHash: t.prevHash,
    hash: t.hash,
    requestParametersTruncated: t.requestParametersTruncated,
    responseElementsTruncated: t.responseElementsTruncated,
  };
  if (t.requestPayload !== undefined) o.requestPayload = digestJson(t.requestPayload);
  if (t.responsePayload !== undefined) o.responsePayload = digestJson(t.responsePayload);
  o.outcome = t.outcome;
  o.spanId = t.spanId;
  if (t.upstreamIdentity !== undefined) {
    const u = t.upstreamIdentity;
    noUnknown(u);
    o.upstreamIdentity = {
      source: u.source,
      accessKeyId: u.accessKeyId,
      roleArn: u.roleArn,
      assumedRoleArn: u.assumedRoleArn,
      sessionName: u.sessionName,
      sourceIdentity: u.sourceIdentity,
    };
  }
  return o;
}

function auditEventJsonValue(e: AuditEvent): Record<string, unknown> {
  noUnknown(e);
  const o: Record<string, unknown> = {
    eventVersion: e.eventVersion,
    eventID: e.eventId,
    eventTime: e.eventTime,
    eventSource: e.eventSource,
    eventName: e.eventName,
    awsRegion: e.awsRegion,
    sourceIPAddress: e.sourceIpAddress,
    userAgent: e.userAgent,
  };
  if (e.userIdentity !== undefined) {
    const u = e.userIdentity;
    noUnknown(u);
    o.userIdentity = { type: u.type, principalId: u.principalId, accessKeyId: u.accessKeyId };
  }
  if (e.requestParameters !== undefined) o.requestParameters = structJson(e.requestParameters);
  if (e.responseElements !== undefined) o.responseElements = structJson(e.responseElements);
  if (e.errorCode !== undefined) o.errorCode = e.errorCode;
  if (e.errorMessage !== undefined) o.errorMessage = e.errorMessage;
  o.requestID = e.requestId;
  o.readOnly = e.readOnly;
  o.resources = e.resources.map((r) => {
    noUnknown(r);
    return { ARN: r.arn, type: r.type };
  });
  o.eventType = e.eventType;
  o.recipientAccountId = e.recipientAccountId;
  if (e.tollgate !== undefined) o.tollgate = tollgateJson(e.tollgate);
  o.eventCategory = e.eventCategory;
  o.managementEvent = e.managementEvent;
  if (e.tlsDetails !== undefined) {
    const t = e.tlsDetails;
    noUnknown(t);
    o.tlsDetails = {
      tlsVersion: t.tlsVersion,
      cipherSuite: t.cipherSuite,
      clientProvidedHostHeader: t.clientProvidedHostHeader,
    };
  }
  return o;
}
