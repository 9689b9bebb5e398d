// A small OTLP/HTTP trace receiver (JSON encoding) for tests: what the edge and the control plane
// really export, decoded into flat spans.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** OTLP span kinds as numbers (SPAN_KIND_SERVER = 2, ...). */
export const SpanKindNumber = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** One received span, flattened. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
      }>;
    }>;
  }>;
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of list ?? []) {
    const v = a.value;
    out[a.key] =
      v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue ?? ""));
  }
  return out;
}

/** Listens on 127.0.0.1:0 for `POST /v1/traces` (OTLP/HTTP JSON) and keeps every span. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Requests that were not OTLP JSON trace exports (should stay empty). */
  readonly rejected: string[] = [];
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<OtlpReceiver> {
    const receiver: OtlpReceiver = new OtlpReceiver(
      createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const type = String(req.headers["content-type"] ?? "");
          if (req.method !== "POST" || req.url !== "/v1/traces" || !type.startsWith("application/json")) {
            receiver.rejected.push(`${req.method} ${req.url} ${type}`);
            res.writeHead(404).end();
            return;
          }
          try {
            receiver.#accept(JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpRequest);
          } catch (err) {
            receiver.rejected.push(String(err));
            res.writeHead(400).end();
            return;
          }
          res.writeHead(200, { "content-type": "application/json" }).end("{}");
        });
      }),
    );
    await new Promise<void>((resolve) => receiver.#server.listen(0, "127.0.0.1", resolve));
    return receiver;
  }

  /** `http://127.0.0.1:PORT/v1/traces`. */
  get tracesUrl(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1/traces`;
  }

  #accept(body: OtlpRequest): void {
    for (const rs of body.resourceSpans ?? []) {
      const service = String(attributes(rs.resource?.attributes)["service.name"] ?? "");
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            service,
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: s.kind,
            attributes: attributes(s.attributes),
          });
        }
      }
    }
  }

  /** Polls until `find` returns a span (or throws after `timeoutMs`). */
  async waitFor(find: (spans: ReceivedSpan[]) => ReceivedSpan | undefined, what: string, timeoutMs = 30_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = find(this.spans);
      if (s !== undefined) return s;
      if (Date.now() > until) {
        throw new Error(`no ${what} span in ${timeoutMs} ms; got ${JSON.stringify(this.spans.map((x) => x.name))}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
