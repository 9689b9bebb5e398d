import { createHash } from "node:crypto";
import {
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { AuditEvent } from "@tollgate/proto";
import { formatTraceparent } from "@tollgate/sdk";

/** The PRODUCER span of one audit event's publish and the header value that carries it on. */
export interface PublishSpan {
  readonly span: Span;
  /** `traceparent` for the JetStream message: the producer span (or, not recorded, the call's). */
  readonly traceparent: string;
}

/** What a publish span needs of an event. */
export interface EventTraceIds {
  eventId: string;
  /** `tollgate.traceId` ("" = the event has no trace). */
  traceId: string;
  /** `tollgate.spanId`. */
  spanId: string;
}

/** The trace ids of a decoded event. */
export function eventTraceIds(event: AuditEvent): EventTraceIds {
  return { eventId: event.eventId, traceId: event.tollgate?.traceId ?? "", spanId: event.tollgate?.spanId ?? "" };
}

const JSON_TRACE_ID = /^"traceId":"([0-9a-f]{32})"/;
const JSON_SPAN_ID = /^"spanId":"([0-9a-f]{16})"/;

/**
 * The trace ids of an event from its `auditEventToJson` text, without decoding it. Fields are
 * written in field-number order and everything after `tollgate` has fixed keys, so the last
 * `"traceId":`/`"spanId":` keys are `tollgate`'s (a request parameter named so comes earlier).
 */
export function eventTraceIdsFromJson(eventId: string, json: string): EventTraceIds {
  const t = json.lastIndexOf('"traceId":"');
  const sp = json.lastIndexOf('"spanId":"');
  return {
    eventId,
    traceId: t < 0 ? "" : (JSON_TRACE_ID.exec(json.slice(t, t + 46))?.[1] ?? ""),
    spanId: sp < 0 || sp < t ? "" : (JSON_SPAN_ID.exec(json.slice(sp, sp + 29))?.[1] ?? ""),
  };
}

/**
 * The call's span context, rebuilt from its event (it survives the journal and restarts): the
 * recorded SERVER span (`tollgate.spanId`, sampled) or, when the call was not traced, a span id
 * derived from the eventID (not sampled) so every replay of the event carries the same
 * `traceparent`.
 */
export function callSpanContext(t: EventTraceIds): SpanContext | undefined {
  if (t.traceId === "") return undefined;
  const recorded = t.spanId !== "";
  return {
    traceId: t.traceId,
    spanId: recorded ? t.spanId : derivedSpanId(t.eventId),
    traceFlags: recorded ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-([0-9a-f]{4})-([0-9a-f]{12})$/;

/** A span id that is a function of the eventID: the random tail of its UUID, else a hash of it. */
function derivedSpanId(eventId: string): string {
  const m = UUID.exec(eventId);
  const id = m !== null ? `${m[1]}${m[2]}` : createHash("sha256").update(eventId).digest("hex").slice(0, 16);
  return id === "0000000000000000" ? "0000000000000001" : id;
}

/**
 * Starts the PRODUCER span for publishing an event on `subject` as a child of the call's span;
 * `undefined` for an event without a trace id. End it when JetStream acknowledges.
 */
export function startPublishSpan(
  tracer: Tracer,
  event: EventTraceIds,
  subject: string,
  subjectPrefix: string,
  sequence: bigint,
): PublishSpan | undefined {
  const parent = callSpanContext(event);
  if (parent === undefined) return undefined;
  const span = tracer.startSpan(
    `publish ${subjectPrefix}.audit.v1`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": subject,
        "messaging.message.id": event.eventId,
        "tollgate.event_id": event.eventId,
        "tollgate.sequence": Number(sequence),
      },
    },
    trace.setSpanContext(ROOT_CONTEXT, parent),
  );
  const sc = span.spanContext();
  return { span, traceparent: formatTraceparent(span.isRecording() && isSpanContextValid(sc) ? sc : parent) };
}
