import { fromJsonString } from "@bufbuild/protobuf";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { type Checkpoint, CheckpointSchema, type IntegrityAlert } from "@tollgate/proto";
import { auditEventFromJson, parseTraceparent, TRACEPARENT_HEADER, TRACESTATE_HEADER } from "@tollgate/sdk";
import { type AuditIndex, indexableEvent } from "./audit-index.js";
import type { AuditIntegrity } from "./audit-integrity.js";
import type { Logger } from "./logger.js";

/** Options for {@link AuditIngest}. */
export interface AuditIngestOptions {
  stream: string;
  /** Durable consumer name. */
  consumerName: string;
  /** Replay the whole stream (delete and recreate the durable consumer), e.g. for a new index. */
  replay: boolean;
  /** Unacknowledged messages the server may hand out at once. */
  maxAckPending?: number;
  /** Subject prefix: `<prefix>.audit.…` are events, `<prefix>.checkpoint.…` edge checkpoints. */
  subjectPrefix: string;
  /** Verifies chains and checkpoints in stream order; without it, checkpoints are skipped. */
  integrity?: AuditIntegrity | undefined;
  /**
   * Tracer for the CONSUMER span of each event's ingest, a child of the edge's PRODUCER span
   * named by the message's `traceparent` header. Default: the global tracer provider's.
   */
  tracer?: Tracer;
}

/** Instrumentation scope of the control plane's spans. */
export const CONTROL_PLANE_TRACER_NAME = "@tollgate/control-plane";

/** Delay before an event that failed to insert (index trouble, not a bad event) is redelivered. */
const RETRY_DELAY_MS = 5_000;

/**
 * Feeds the audit index from JetStream: a durable pull consumer with explicit acks, handled one
 * message at a time in stream order. Each event is verified (hash chain, {@link AuditIntegrity})
 * and indexed in one SQLite transaction and acked only after that; checkpoints are verified
 * likewise. Messages that cannot be parsed are logged and terminated so they do not block the
 * consumer.
 */
export class AuditIngest {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #index: AuditIndex;
  readonly #options: AuditIngestOptions;
  readonly #logger: Logger;
  readonly #tracer: Tracer;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #indexed = 0;

  constructor(
    js: JetStreamClient,
    jsm: JetStreamManager,
    index: AuditIndex,
    options: AuditIngestOptions,
    logger: Logger,
  ) {
    this.#js = js;
    this.#jsm = jsm;
    this.#index = index;
    this.#options = options;
    this.#logger = logger;
    this.#tracer = options.tracer ?? trace.getTracer(CONTROL_PLANE_TRACER_NAME);
  }

  /** Events inserted (not counting duplicates) since start. */
  get indexed(): number {
    return this.#indexed;
  }

  async start(): Promise<void> {
    const { stream, consumerName, replay } = this.#options;
    // Recreate the durable consumer at the index's own position rather than resuming the old one:
    // messages the previous process had pulled but not acked would otherwise come back only after
    // ack_wait, behind newer ones, and the chain check would see a false gap. The position is
    // stored in the same SQLite transaction as each event, so this resumes exactly once, in order.
    const resumeAfter = replay ? 0 : this.#index.resumeStreamSeq();
    try {
      await this.#jsm.consumers.delete(stream, consumerName);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
    if (replay) {
      this.#logger.info({ stream, consumer: consumerName }, "audit index is new: replaying the audit stream");
    }
    await this.#jsm.consumers.add(stream, {
      durable_name: consumerName,
      ack_policy: AckPolicy.Explicit,
      ...(resumeAfter > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAfter + 1 }
        : { deliver_policy: DeliverPolicy.All }),
      max_ack_pending: this.#options.maxAckPending ?? 1000,
      ack_wait: 30_000 * 1_000_000,
    });
    const consumer = await this.#js.consumers.get(stream, consumerName);
    this.#messages = await consumer.consume({ max_messages: 256 });
    this.#loop = this.#run(this.#messages);
  }

  async #run(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) await this.#handle(m);
    } catch (err) {
      this.#logger.error({ err, stream: this.#options.stream }, "audit ingest stopped");
    }
  }

  async #handle(m: JsMsg): Promise<void> {
    const prefix = this.#options.subjectPrefix;
    if (m.subject.startsWith(`${prefix}.checkpoint.`)) {
      await this.#handleCheckpoint(m);
    } else if (m.subject.startsWith(`${prefix}.audit.`)) {
      this.#handleEvent(m);
    } else {
      m.ack();
    }
  }

  async #handleCheckpoint(m: JsMsg): Promise<void> {
    const integrity = this.#options.integrity;
    let checkpoint: Checkpoint;
    try {
      checkpoint = fromJsonString(CheckpointSchema, m.string(), { ignoreUnknownFields: true });
    } catch (err) {
      this.#logger.warn({ err, subject: m.subject, streamSeq: m.seq }, "dropping malformed checkpoint");
      m.term();
      return;
    }
    if (integrity === undefined) {
      m.ack();
      return;
    }
    let alerts: IntegrityAlert[];
    try {
      await integrity.prepareCheckpoint(checkpoint);
      alerts = this.#index.transaction(() => integrity.checkCheckpoint(checkpoint, m.seq));
    } catch (err) {
      this.#logger.error({ err, streamSeq: m.seq }, "cannot verify checkpoint; will retry");
      m.nak(RETRY_DELAY_MS);
      return;
    }
    integrity.emit(alerts);
    m.ack();
  }

  #handleEvent(m: JsMsg): void {
    const span = this.#startIngestSpan(m);
    try {
      this.#ingestEvent(m, span);
    } finally {
      span.end();
    }
  }

  /** CONSUMER span continuing the producer's `traceparent` (a root span when there is none). */
  #startIngestSpan(m: JsMsg): Span {
    const h = m.headers;
    const parent = parseTraceparent(h?.get(TRACEPARENT_HEADER) || undefined, h?.get(TRACESTATE_HEADER) || undefined);
    return this.#tracer.startSpan(
      `process ${this.#options.stream}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "nats",
          "messaging.operation.type": "process",
          "messaging.operation.name": "process",
          "messaging.destination.name": m.subject,
          "messaging.consumer.group.name": this.#options.consumerName,
          "messaging.message.body.size": m.data.length,
          "tollgate.stream": this.#options.stream,
          "tollgate.stream_sequence": m.seq,
        },
      },
      parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent),
    );
  }

  #ingestEvent(m: JsMsg, span: Span): void {
    const json = m.string();
    let event: ReturnType<typeof auditEventFromJson>;
    let row: ReturnType<typeof indexableEvent>;
    try {
      event = auditEventFromJson(json);
      row = indexableEvent(event, m.seq, json);
    } catch (err) {
      this.#logger.warn({ err, subject: m.subject, streamSeq: m.seq }, "dropping malformed audit event");
      span.setStatus({ code: SpanStatusCode.ERROR, message: "malformed audit event" });
      m.term();
      return;
    }
    if (span.isRecording()) {
      span.setAttributes({ "messaging.message.id": event.eventId, "tollgate.event_id": event.eventId });
    }
    const integrity = this.#options.integrity;
    let alerts: IntegrityAlert[] = [];
    let inserted = false;
    try {
      inserted = this.#index.transaction(() => {
        if (integrity !== undefined) alerts = integrity.checkEvent(event, m.seq);
        return this.#index.insert(row);
      });
      if (inserted) this.#indexed++;
    } catch (err) {
      this.#logger.error({ err, streamSeq: m.seq }, "cannot index audit event; will retry");
      span.setStatus({ code: SpanStatusCode.ERROR, message: "cannot index audit event" });
      m.nak(RETRY_DELAY_MS);
      return;
    }
    if (span.isRecording()) {
      span.setAttributes({ "tollgate.indexed": inserted, "tollgate.alerts": alerts.length });
    }
    integrity?.emit(alerts);
    m.ack();
  }

  /** Stops consuming; in-flight acks are flushed by the NATS connection's drain/close. */
  async stop(): Promise<void> {
    const messages = this.#messages;
    this.#messages = undefined;
    if (messages === undefined) return;
    await messages.close();
    await this.#loop;
  }
}
