import { randomFillSync } from "node:crypto";
import { createTraceState, type SpanContext, TraceFlags } from "@opentelemetry/api";

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as Tollgate carries it: in the
 * `traceparent` header of a caller's request, in the `traceparent`/`tracestate` headers of each
 * JetStream audit message, and as `tollgate.traceId`/`tollgate.spanId` in the audit event. Parsed
 * and formatted here, not through a registered propagator, so it works with tracing off.
 */

/** Header (HTTP and NATS) that carries the parent span. */
export const TRACEPARENT_HEADER = "traceparent";
/** Header (HTTP and NATS) that carries vendor trace state. */
export const TRACESTATE_HEADER = "tracestate";

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);

/**
 * Parses a `traceparent` value into a remote span context; `undefined` when absent or invalid
 * (all-zero ids, version `ff`, or extra fields on version 00), as the specification requires.
 */
export function parseTraceparent(value: string | undefined, tracestate?: string): SpanContext | undefined {
  if (value === undefined) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string?];
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  const sc: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (tracestate !== undefined && tracestate !== "") sc.traceState = createTraceState(tracestate);
  return sc;
}

/** Formats a span context as a version-00 `traceparent` value. */
export function formatTraceparent(sc: Pick<SpanContext, "traceId" | "spanId" | "traceFlags">): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED) === 0 ? "00" : "01"}`;
}

// Random bytes are drawn from a pool refilled 4 KiB at a time (as crypto.randomUUID does): one
// trace id per AWS call even with tracing off, so this is on the hot path.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const id = pool.toString("hex", poolAt, poolAt + bytes);
  poolAt += bytes;
  return id;
}

/** A random, valid W3C trace id (32 lowercase hex). */
export function randomTraceId(): string {
  const id = randomHex(16);
  return id === ZERO_TRACE_ID ? randomTraceId() : id;
}

/** A random, valid W3C span id (16 lowercase hex). */
export function randomSpanId(): string {
  const id = randomHex(8);
  return id === ZERO_SPAN_ID ? randomSpanId() : id;
}
