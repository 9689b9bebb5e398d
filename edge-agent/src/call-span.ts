import type { IncomingHttpHeaders } from "node:http";
import {
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { type AuditEvent, Decision } from "@tollgate/proto";
import { parseTraceparent, randomTraceId, TRACEPARENT_HEADER, TRACESTATE_HEADER } from "@tollgate/sdk";

/** Instrumentation scope of the edge's spans. */
export const EDGE_TRACER_NAME = "@tollgate/edge-agent";

/** The OpenTelemetry SERVER span of one AWS call and the trace ids its audit event records. */
export interface CallSpan {
  readonly span: Span;
  /** `tollgate.traceId`: the span's trace, or (span not recorded) the caller's or a random one. */
  readonly traceId: string;
  /** `tollgate.spanId`: the span's id when it is recorded, else "". */
  readonly spanId: string;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Starts the SERVER span of a call, continuing the caller's W3C `traceparent` when it sent a
 * valid one. With tracing off (the API's no-op tracer) this costs one random id: the event
 * still gets a trace id (the caller's, or a fresh random one), so SIEM records and any traces
 * the caller exports join on it.
 */
export function startCallSpan(tracer: Tracer, headers: IncomingHttpHeaders, startTimeMs: number): CallSpan {
  const parent = parseTraceparent(headerValue(headers, TRACEPARENT_HEADER), headerValue(headers, TRACESTATE_HEADER));
  const ctx = parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent);
  const span = tracer.startSpan("aws", { kind: SpanKind.SERVER, startTime: startTimeMs }, ctx);
  const sc = span.spanContext();
  if (span.isRecording()) return { span, traceId: sc.traceId, spanId: sc.spanId };
  return { span, traceId: isSpanContextValid(sc) ? sc.traceId : (parent?.traceId ?? randomTraceId()), spanId: "" };
}

/**
 * Names the span after the classified call (`aws <service>.<operation>`), sets the OpenTelemetry
 * RPC/AWS semantic-convention attributes and Tollgate's own from the call's final audit event,
 * and ends it.
 */
export function endCallSpan(callSpan: CallSpan, event: AuditEvent, method: string): void {
  const { span } = callSpan;
  if (span.isRecording()) {
    const t = event.tollgate;
    const service = t?.signingName ?? "";
    const status = t?.httpStatus ?? 0;
    span.updateName(`aws ${service}.${event.eventName}`);
    span.setAttributes({
      "rpc.system": "aws-api",
      "rpc.service": service,
      "rpc.method": event.eventName,
      "cloud.region": event.awsRegion,
      "http.request.method": method,
      "http.response.status_code": status,
      "client.address": event.sourceIpAddress,
      "tollgate.event_id": event.eventId,
      "tollgate.decision": t?.decision === Decision.ALLOW ? "allow" : "deny",
      "tollgate.reason": t?.reason ?? "",
      "tollgate.principal": event.userIdentity?.principalId ?? "",
      "tollgate.connection": t?.connection ?? "",
      "tollgate.edge": t?.edge ?? "",
    });
    if (event.requestId !== "") span.setAttribute("aws.request_id", event.requestId);
    if (event.errorCode !== undefined) span.setAttribute("tollgate.error_code", event.errorCode);
    // Server-span convention: only 5xx (and calls never answered) are errors of this service.
    if (status >= 500 || status === 0) {
      span.setAttribute("error.type", event.errorCode ?? String(status));
      span.setStatus({ code: SpanStatusCode.ERROR, message: event.errorMessage ?? "" });
    }
  }
  span.end();
}
