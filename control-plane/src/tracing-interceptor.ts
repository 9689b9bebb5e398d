import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { parseTraceparent, TRACEPARENT_HEADER, TRACESTATE_HEADER } from "@tollgate/sdk";
import { CONTROL_PLANE_TRACER_NAME } from "./audit-ingest.js";

/** Connect's code name in snake case (`permission_denied`), as `rpc.connect_rpc.error_code` wants it. */
function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function fail(span: Span, err: unknown): void {
  const ce = ConnectError.from(err);
  span.setAttribute("rpc.connect_rpc.error_code", codeName(ce.code));
  span.setStatus({ code: SpanStatusCode.ERROR, message: codeName(ce.code) });
}

async function* endWhenDone<T>(messages: AsyncIterable<T>, span: Span): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    fail(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * One OpenTelemetry SERVER span per RPC (`<service>/<method>`, `rpc.system=connect_rpc`),
 * continuing the caller's `traceparent` header. Put it first, so it covers authentication and
 * error mapping; a server stream's span ends with the stream.
 */
export function createTracingInterceptor(tracer: Tracer = trace.getTracer(CONTROL_PLANE_TRACER_NAME)): Interceptor {
  return (next) => async (req) => {
    const parent = parseTraceparent(
      req.header.get(TRACEPARENT_HEADER) ?? undefined,
      req.header.get(TRACESTATE_HEADER) ?? undefined,
    );
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      {
        kind: SpanKind.SERVER,
        attributes: { "rpc.system": "connect_rpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name },
      },
      parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent),
    );
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      fail(span, err);
      span.end();
      throw err;
    }
    if (res.stream) return { ...res, message: endWhenDone(res.message, span) };
    span.end();
    return res;
  };
}
