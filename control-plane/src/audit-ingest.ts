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
import { type AuditEvent, type Checkpoint, CheckpointSchema, type IntegrityAlert } from "@tollgate/proto";
import { auditEventFromJson, parseTraceparent, TRACEPARENT_HEADER, TRACESTATE_HEADER } from "@tollgate/sdk";
import { type AuditIndex, type IndexableEvent, indexableEvent } from "./audit-index.js";
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
  /**
   * How long a batch stays open for more messages after its first one, ms. Messages are
   * verified, indexed (one SQLite transaction per batch) and acked per batch; a commit costs
   * about the same for 1 event as for 20 (every index's pages are written to the WAL), so
   * gathering a few ms of a steady stream cuts the CPU per event, at the price of that much
   * more delay before an event is queryable. A backlog fills batches (512) without waiting.
   * 0 takes only what has already arrived. Default 20.
   */
  batchWindowMs?: number;
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

/** Most messages verified and indexed in one transaction (and pulled from the server at once). */
const MAX_BATCH = 512;

/** Default {@link AuditIngestOptions.batchWindowMs}. */
const DEFAULT_BATCH_WINDOW_MS = 20;

const TIMED_OUT = Symbol("timed out");

/** `p`, or {@link TIMED_OUT} if it has not settled within `ms`. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where a message of a batch is: `pending` (to verify and index), `applied` (done in the open
 * transaction), `retry` (nak: index or key-store trouble), `ack` (nothing to index), `term` (malformed).
 */
type ItemState = "pending" | "applied" | "retry" | "ack" | "term";

interface ItemBase {
  m: JsMsg;
  state: ItemState;
  err?: unknown;
}

interface EventItem extends ItemBase {
  kind: "event";
  span: Span;
  event: AuditEvent;
  row: IndexableEvent;
  alerts: IntegrityAlert[];
  inserted: boolean;
}

interface MalformedEventItem extends ItemBase {
  kind: "malformed";
  span: Span;
}

interface CheckpointItem extends ItemBase {
  kind: "checkpoint";
  checkpoint: Checkpoint;
  alerts: IntegrityAlert[];
}

interface OtherItem extends ItemBase {
  kind: "other";
}

type Item = EventItem | MalformedEventItem | CheckpointItem | OtherItem;

/**
 * Feeds the audit index from JetStream: a durable pull consumer with explicit acks, handled in
 * stream order, in batches: what has arrived, and what arrives within `batchWindowMs` of the
 * batch's first message, up to 512 messages. Each event is
 * verified (hash chain, {@link AuditIntegrity}) and indexed, and each checkpoint verified, in one
 * SQLite transaction (a savepoint per message, so a message that fails is retried alone), and
 * every message is acked only after that transaction has committed. Messages that cannot be
 * parsed are logged and terminated so they do not block the consumer.
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
    this.#messages = await consumer.consume({ max_messages: MAX_BATCH });
    this.#loop = this.#run(this.#messages);
  }

  async #run(messages: ConsumerMessages): Promise<void> {
    const it = messages[Symbol.asyncIterator]();
    const windowMs = this.#options.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS;
    // A next() still running when a batch's window closed: its message starts the next batch.
    let waiting: Promise<IteratorResult<JsMsg>> | undefined;
    try {
      for (;;) {
        const first = await (waiting ?? it.next());
        waiting = undefined;
        if (first.done === true) break;
        // Take what has arrived, and what arrives within the window, up to MAX_BATCH.
        const batch = [first.value];
        const deadline = performance.now() + windowMs;
        let done = false;
        while (batch.length < MAX_BATCH) {
          let next: IteratorResult<JsMsg>;
          if (messages.getPending() > 0) {
            next = await it.next();
          } else {
            const leftMs = deadline - performance.now();
            if (leftMs <= 0) break;
            waiting = it.next();
            const r = await withTimeout(waiting, leftMs);
            if (r === TIMED_OUT) break;
            waiting = undefined;
            next = r;
          }
          if (next.done === true) {
            done = true;
            break;
          }
          batch.push(next.value);
        }
        await this.#handleBatch(batch);
        if (done) break;
      }
    } catch (err) {
      this.#logger.error({ err, stream: this.#options.stream }, "audit ingest stopped");
    } finally {
      await it.return?.();
    }
  }

  /**
   * Handles messages in stream order: parses them, looks up the keys their checkpoints name, then
   * verifies and indexes all of them in one SQLite transaction (each message in a savepoint of
   * its own, so one that fails is retried alone) and acknowledges them once it has committed.
   */
  async #handleBatch(batch: readonly JsMsg[]): Promise<void> {
    const prefix = this.#options.subjectPrefix;
    const integrity = this.#options.integrity;
    const items: Item[] = [];
    for (const m of batch) {
      if (m.subject.startsWith(`${prefix}.checkpoint.`)) items.push(this.#parseCheckpoint(m));
      else if (m.subject.startsWith(`${prefix}.audit.`)) items.push(this.#parseEvent(m));
      else items.push({ kind: "other", m, state: "ack" });
    }
    if (integrity !== undefined) {
      for (const item of items) {
        if (item.kind !== "checkpoint" || item.state !== "pending") continue;
        try {
          await integrity.prepareCheckpoint(item.checkpoint);
        } catch (err) {
          item.state = "retry";
          item.err = err;
        }
      }
    }
    this.#apply(items);
    for (const item of items) this.#finish(item);
  }

  #parseCheckpoint(m: JsMsg): CheckpointItem | OtherItem {
    try {
      const checkpoint = fromJsonString(CheckpointSchema, m.string(), { ignoreUnknownFields: true });
      return {
        kind: "checkpoint",
        m,
        state: this.#options.integrity === undefined ? "ack" : "pending",
        checkpoint,
        alerts: [],
      };
    } catch (err) {
      this.#logger.warn({ err, subject: m.subject, streamSeq: m.seq }, "dropping malformed checkpoint");
      return { kind: "other", m, state: "term" };
    }
  }

  #parseEvent(m: JsMsg): EventItem | MalformedEventItem {
    const span = this.#startIngestSpan(m);
    const json = m.string();
    let event: AuditEvent;
    let row: IndexableEvent;
    try {
      event = auditEventFromJson(json);
      row = indexableEvent(event, m.seq, json);
    } catch (err) {
      this.#logger.warn({ err, subject: m.subject, streamSeq: m.seq }, "dropping malformed audit event");
      span.setStatus({ code: SpanStatusCode.ERROR, message: "malformed audit event" });
      return { kind: "malformed", m, state: "term", span };
    }
    if (span.isRecording()) {
      span.setAttributes({ "messaging.message.id": event.eventId, "tollgate.event_id": event.eventId });
    }
    return { kind: "event", m, state: "pending", span, event, row, alerts: [], inserted: false };
  }

  /**
   * Verifies and indexes the pending items in as few transactions as possible (one unless SQLite
   * rolls a transaction back by itself). Items whose changes did not commit are marked for retry.
   */
  #apply(items: Item[]): void {
    let i = 0;
    while (i < items.length) {
      const from = i;
      try {
        this.#index.transaction(() => {
          for (; i < items.length; i++) {
            const item = items[i] as Item;
            if (item.state !== "pending") continue;
            try {
              this.#index.transaction(() => this.#applyOne(item as EventItem | CheckpointItem));
              item.state = "applied";
            } catch (err) {
              item.state = "retry";
              item.err = err;
              // SQLite undid the whole transaction: what it held is lost, retry it all.
              if (!this.#index.inTransaction) throw err;
            }
          }
        });
      } catch (err) {
        // The transaction did not commit (or begin): what it applied, and the item it stopped
        // at, are retried; the next transaction starts after that item.
        for (let k = from; k < Math.min(i + 1, items.length); k++) {
          const item = items[k] as Item;
          if (item.state === "ack" || item.state === "term") continue;
          item.state = "retry";
          item.err ??= err;
        }
        i++;
      }
    }
  }

  #applyOne(item: EventItem | CheckpointItem): void {
    const integrity = this.#options.integrity;
    const seq = item.m.seq;
    if (item.kind === "checkpoint") {
      if (integrity !== undefined) item.alerts = integrity.checkCheckpoint(item.checkpoint, seq);
      return;
    }
    item.alerts = integrity !== undefined ? integrity.checkEvent(item.event, seq) : [];
    item.inserted = this.#index.insert(item.row);
  }

  /** After the transaction: counts, alerts, the acknowledgement and the span end. */
  #finish(item: Item): void {
    const { m } = item;
    switch (item.kind) {
      case "other":
        if (item.state === "term") m.term();
        else m.ack();
        return;
      case "malformed":
        m.term();
        item.span.end();
        return;
      case "checkpoint":
        if (item.state !== "applied" && item.state !== "ack") {
          this.#logger.error({ err: item.err, streamSeq: m.seq }, "cannot verify checkpoint; will retry");
          m.nak(RETRY_DELAY_MS);
          return;
        }
        this.#options.integrity?.emit(item.alerts);
        m.ack();
        return;
      case "event": {
        const span = item.span;
        if (item.state !== "applied") {
          this.#logger.error({ err: item.err, streamSeq: m.seq }, "cannot index audit event; will retry");
          span.setStatus({ code: SpanStatusCode.ERROR, message: "cannot index audit event" });
          m.nak(RETRY_DELAY_MS);
          span.end();
          return;
        }
        if (item.inserted) this.#indexed++;
        if (span.isRecording()) {
          span.setAttributes({ "tollgate.indexed": item.inserted, "tollgate.alerts": item.alerts.length });
        }
        this.#options.integrity?.emit(item.alerts);
        m.ack();
        span.end();
        return;
      }
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

  /** Stops consuming; in-flight acks are flushed by the NATS connection's drain/close. */
  async stop(): Promise<void> {
    const messages = this.#messages;
    this.#messages = undefined;
    if (messages === undefined) return;
    await messages.close();
    await this.#loop;
  }
}
