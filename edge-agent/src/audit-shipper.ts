import * as fs from "node:fs";
import { join } from "node:path";
import { clone, create, fromBinary, toJsonString } from "@bufbuild/protobuf";
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { createInbox, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { type Tracer, trace } from "@opentelemetry/api";
import { type AuditEvent, AuditEventSchema, CheckpointSchema, TollgateContextSchema } from "@tollgate/proto";
import {
  auditCheckpointSubject,
  auditEventToBinary,
  auditEventToJson,
  auditSubject,
  chainEvent,
  type EdgeSigningKey,
  signCheckpoint,
  TRACEPARENT_HEADER,
} from "@tollgate/sdk";
import { type AuditJournal, fsyncDir, type JournalRecord, JournalRecordType } from "./audit-journal.js";
import { chainEncodedEvent, decodeFinalPayload, type EncodedAuditEvent } from "./audit-wire.js";
import { EDGE_TRACER_NAME } from "./call-span.js";
import { type Logger, silentLogger } from "./logger.js";
import { eventTraceIds, eventTraceIdsFromJson, type PublishSpan, startPublishSpan } from "./publish-span.js";

/**
 * Ships the audit journal to JetStream, in journal order, exactly once per call.
 *
 * Pairing: an Intent record is remembered until its Completion arrives; the Completion's event
 * is shipped. A Start record (written on every journal open) means the process restarted, so
 * every Intent still unmatched at that point belongs to a call interrupted by a crash: it is
 * shipped as the intent event with `tollgate.outcome = "unknown"` and errorCode
 * `EdgeInterrupted` — the call may have reached AWS, so it still gets exactly one event.
 *
 * Chaining: events are chained (sequence, prevHash, hash) in shipping order. What is shipped,
 * and in which order, is a pure function of the journal and the persisted state, so after a
 * crash the replayed events get the same sequence and hash and the same `Nats-Msg-Id`
 * (= eventID); JetStream's duplicate window drops the replays.
 *
 * Ordering: publishes are pipelined (up to `maxInFlight` unacknowledged): each is a plain NATS
 * publish with `Nats-Msg-Id` and a reply subject on one inbox per connection, so a batch of
 * events goes out in one socket write and their JetStream acknowledgements are collected by one
 * subscription (no request, timer or abort signal per event); one timer bounds the wait for the
 * oldest unacknowledged event. The shipper wakes as soon as the journal has new durable records
 * (no polling interval). The shipper owns its
 * NATS connection and opens it without auto-reconnect, so publishes buffered in the client
 * during an outage are never sent behind a lost predecessor: on any failure it closes the
 * connection, reconnects with backoff and republishes every unacknowledged event in order.
 *
 * Tracing: each event gets a PRODUCER span, child of the call's span as recorded in the event
 * (`tollgate.traceId`/`spanId`, so it survives the journal and restarts), and its W3C
 * `traceparent` in the message headers (see `publish-span.ts`).
 *
 * State `{offset, sequence, hash, pending}` is written atomically (temp file, fsync, rename,
 * fsync dir) only after JetStream acknowledged everything it covers; whole journal segments
 * before it are then deleted.
 */

/** Options for {@link AuditShipper}. */
export interface AuditShipperOptions {
  journal: AuditJournal;
  /**
   * Opens a NATS connection for the shipper alone. It should be created with
   * `reconnect: false`: the shipper reconnects itself, in order (see the module comment).
   */
  connect: () => Promise<NatsConnection>;
  /** This edge's name: checkpoints are per edge. */
  edge: string;
  /** Ed25519 key that signs checkpoints. */
  signingKey: EdgeSigningKey;
  /** Subject prefix for checkpoints; defaults to that of the last shipped event. */
  subjectPrefix?: () => string | undefined;
  /** File that holds the shipping state. Default `<journal dir>/shipper-state.json`. */
  stateFile?: string;
  /** Most unacknowledged publishes at a time. Default 256. */
  maxInFlight?: number;
  /** How long to wait for one JetStream acknowledgement, ms. Default 5000. */
  ackTimeoutMs?: number;
  /** Checkpoint period, ms (at most 10000). Default 5000. */
  checkpointIntervalMs?: number;
  /** First reconnect delay, doubled up to `maxRetryDelayMs`. Default 100 ms. */
  retryDelayMs?: number;
  /** Longest reconnect delay, ms. Default 2000. */
  maxRetryDelayMs?: number;
  logger?: Logger;
  /**
   * Tracer for each event's PRODUCER span (child of the call's span; its `traceparent` goes into
   * the message headers). Default: the global tracer provider's (no-op unless one is registered).
   */
  tracer?: Tracer;
}

interface ResolvedAuditShipperOptions extends Required<Omit<AuditShipperOptions, "subjectPrefix">> {
  subjectPrefix: () => string | undefined;
}

/** Applies {@link AuditShipperOptions} defaults. */
export function resolveAuditShipperOptions(options: AuditShipperOptions): ResolvedAuditShipperOptions {
  const interval = options.checkpointIntervalMs ?? 5000;
  if (!(interval > 0 && interval <= 10_000)) throw new RangeError("checkpointIntervalMs must be in (0, 10000]");
  return {
    journal: options.journal,
    connect: options.connect,
    edge: options.edge,
    signingKey: options.signingKey,
    subjectPrefix: options.subjectPrefix ?? (() => undefined),
    stateFile: options.stateFile ?? join(options.journal.dir, "shipper-state.json"),
    maxInFlight: options.maxInFlight ?? 256,
    ackTimeoutMs: options.ackTimeoutMs ?? 5000,
    checkpointIntervalMs: interval,
    retryDelayMs: options.retryDelayMs ?? 100,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 2000,
    logger: options.logger ?? silentLogger,
    tracer: options.tracer ?? trace.getTracer(EDGE_TRACER_NAME),
  };
}

/** What Intent and Completion records carry: the subject prefix and the event. */
export interface JournalEvent {
  subjectPrefix: string;
  event: AuditEvent;
}

/** Encodes an Intent/Completion payload: u16 id length ‖ id ‖ u16 prefix length ‖ prefix ‖ protobuf event. */
export function encodeJournalEvent(subjectPrefix: string, event: AuditEvent): Buffer {
  const id = Buffer.from(event.eventId, "utf8");
  const prefix = Buffer.from(subjectPrefix, "utf8");
  const body = auditEventToBinary(event);
  const out = Buffer.allocUnsafe(4 + id.length + prefix.length + body.length);
  out.writeUInt16BE(id.length, 0);
  out.set(id, 2);
  out.writeUInt16BE(prefix.length, 2 + id.length);
  out.set(prefix, 4 + id.length);
  out.set(body, 4 + id.length + prefix.length);
  return out;
}

/** The event id of an encoded payload, without decoding the event. */
export function journalEventId(payload: Buffer): string {
  return payload.toString("utf8", 2, 2 + payload.readUInt16BE(0));
}

/** Decodes {@link encodeJournalEvent}. */
export function decodeJournalEvent(payload: Buffer): JournalEvent {
  const idLen = payload.readUInt16BE(0);
  const prefixLen = payload.readUInt16BE(2 + idLen);
  const start = 4 + idLen + prefixLen;
  return {
    subjectPrefix: payload.toString("utf8", 4 + idLen, start),
    event: fromBinary(AuditEventSchema, payload.subarray(start)),
  };
}

/** Persisted shipping state. */
interface ShipperState {
  /** Next journal record to process. */
  offset: number;
  /** Last chained sequence and hash. */
  sequence: bigint;
  hash: string;
  /** Intents before `offset` without a completion yet: eventID → record offset. */
  pending: Array<[string, number]>;
}

interface Item {
  subject: string;
  data: string;
  msgId: string;
  sequence: bigint;
  hash: string;
  /** Set on items after which the state may be committed. */
  stateAfter: ShipperState | undefined;
  /** Prefix of the event, for checkpoints. */
  subjectPrefix: string;
  /** True once published on the current connection. */
  sent: boolean;
  /** The acknowledgement (or the failure) received for it on the current connection. */
  result: { duplicate: boolean } | Error | undefined;
  /** When the shipper first published it (performance.now()). */
  publishedAt: number;
  /** When it was last published (the acknowledgement timeout runs from here). */
  sentAt: number;
  /** PRODUCER span and the `traceparent` header value; the span ends at the acknowledgement. */
  trace: PublishSpan | undefined;
}

/** Counters for tests and metrics. */
export interface AuditShipperStats {
  /** Events acknowledged by JetStream as newly stored. */
  shipped: number;
  /** Acknowledgements that JetStream flagged duplicate (replays). */
  duplicates: number;
  /** Events shipped as interrupted (outcome "unknown"). */
  interrupted: number;
  /** Connections opened. */
  connects: number;
  /** Checkpoints acknowledged. */
  checkpoints: number;
  /** Failed publish attempts or connection losses. */
  failures: number;
}

const STATE_VERSION = 1;
/** Shortest time between two writes of the shipping state. */
const PERSIST_INTERVAL_MS = 100;

/** Interrupted intent → the event that is shipped for it. */
export function interruptedEvent(intent: AuditEvent): AuditEvent {
  const e = clone(AuditEventSchema, intent);
  e.tollgate ??= create(TollgateContextSchema);
  e.tollgate.outcome = "unknown";
  e.errorCode = "EdgeInterrupted";
  e.errorMessage = "The edge stopped before the call finished; the call may have reached AWS.";
  return e;
}

/** The journal shipper; see the module comment. Call {@link start}, then {@link close}. */
export class AuditShipper {
  readonly #o: ResolvedAuditShipperOptions;
  #state: ShipperState = { offset: 0, sequence: 0n, hash: "", pending: [] };
  /** Working state: where preparation has got to. */
  #cursor = 0;
  #sequence = 0n;
  #hash = "";
  #pending = new Map<string, number>();
  /** Prepared (chained) items not yet acknowledged, in order. */
  #items: Item[] = [];
  /** Latest state whose items are all acknowledged. */
  #acked: ShipperState | undefined;
  #ackedSequence = 0n;
  #ackedHash = "";
  #lastPrefix = "";
  #persisting: Promise<void> | undefined;
  #persistAgain = false;
  #lastPersistAt = 0;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  /** Acknowledgement inbox of the current connection. */
  #inbox = "";
  /** Items published on the current connection and awaiting their acknowledgement, by reply token. */
  #awaiting = new Map<string, Item>();
  /** How many items at the front of #items have been published on the current connection. */
  #sentCount = 0;
  /** Wakes the shipping loop (an acknowledgement arrived, or the journal grew). */
  #wake: (() => void) | undefined;
  #unsubscribeJournal: (() => void) | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #kickScheduled = false;
  #latencyListener: ((ms: number, sequence: bigint) => void) | undefined;
  readonly stats: AuditShipperStats = {
    shipped: 0,
    duplicates: 0,
    interrupted: 0,
    connects: 0,
    checkpoints: 0,
    failures: 0,
  };

  constructor(options: AuditShipperOptions) {
    this.#o = resolveAuditShipperOptions(options);
  }

  /** Head of the chain as acknowledged by JetStream. */
  get head(): { sequence: bigint; hash: string } {
    return { sequence: this.#ackedSequence, hash: this.#ackedHash };
  }

  /** Events prepared but not yet acknowledged. */
  get inFlight(): number {
    return this.#items.length;
  }

  /** Called with publish→ack time for each newly stored event (benchmarks). */
  onAck(listener: ((ms: number, sequence: bigint) => void) | undefined): void {
    this.#latencyListener = listener;
  }

  /** Loads the state, then ships in the background and checkpoints every `checkpointIntervalMs`. */
  async start(): Promise<void> {
    this.#state = await this.#loadState();
    this.#cursor = this.#state.offset;
    this.#sequence = this.#state.sequence;
    this.#hash = this.#state.hash;
    this.#ackedSequence = this.#sequence;
    this.#ackedHash = this.#hash;
    this.#pending = new Map(this.#state.pending);
    await this.#o.journal.release(lowWatermark(this.#state));
    this.#unsubscribeJournal = this.#o.journal.onDurable(() => this.#kickAfterCallers());
    this.#running = true;
    this.#loop = this.#run();
    this.#checkpointTimer = setInterval(() => void this.#checkpoint(), this.#o.checkpointIntervalMs);
  }

  /** Publishes a checkpoint now (also done on the timer). Resolves true when acknowledged. */
  checkpointNow(): Promise<boolean> {
    return this.#checkpoint();
  }

  /**
   * Stops shipping: waits up to `drainMs` for the journal to be shipped completely, then
   * persists the state and closes the connection.
   */
  async close(drainMs = 0): Promise<void> {
    const until = performance.now() + drainMs;
    while (drainMs > 0 && performance.now() < until && !this.idle) await sleep(10);
    this.#running = false;
    if (this.#checkpointTimer !== undefined) clearInterval(this.#checkpointTimer);
    this.#unsubscribeJournal?.();
    this.#kick();
    await this.#loop;
    // One state writer at a time: let a scheduled write finish before the final one.
    while (this.#persisting !== undefined) await this.#persisting;
    await this.#persist();
    await this.#nc?.close().catch(() => {});
    this.#nc = undefined;
  }

  /** True when everything durable in the journal has been shipped and acknowledged. */
  get idle(): boolean {
    return this.#items.length === 0 && this.#cursor >= this.#o.journal.durableEnd;
  }

  async #run(): Promise<void> {
    let delay = this.#o.retryDelayMs;
    while (this.#running) {
      try {
        if (this.#nc === undefined || this.#nc.isClosed()) {
          const nc = await this.#o.connect();
          this.#nc = nc;
          this.#js = jetstream(nc, { timeout: this.#o.ackTimeoutMs });
          this.#inbox = createInbox();
          nc.subscribe(`${this.#inbox}.*`, { callback: (err, msg) => this.#onAck(err, msg) });
          this.stats.connects++;
          // Republish, in order, everything not yet acknowledged.
          this.#resetSent();
        }
        await this.#ship();
        delay = this.#o.retryDelayMs;
      } catch (err) {
        if (!this.#running) break;
        this.stats.failures++;
        this.#o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "audit shipping interrupted");
        // Drop the connection (and anything buffered in it) before republishing in order.
        const nc = this.#nc;
        this.#nc = undefined;
        this.#js = undefined;
        await nc?.close().catch(() => {});
        this.#resetSent();
        await sleep(delay);
        delay = Math.min(delay * 2, this.#o.maxRetryDelayMs);
      }
    }
  }

  /** Forgets what was published on the previous connection: every unacknowledged item is sent again. */
  #resetSent(): void {
    this.#awaiting.clear();
    this.#sentCount = 0;
    for (const item of this.#items) {
      item.sent = false;
      item.result = undefined;
    }
  }

  #kick(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /**
   * Kicks the shipper once the callers whose appends just became durable have run on: a call's
   * intent commit is what lets it be forwarded, and shipping the previous call's event first
   * would put the shipper's work (chain, encode, publish) in front of that call's forwarding.
   */
  #kickAfterCallers(): void {
    if (this.#kickScheduled) return;
    this.#kickScheduled = true;
    setImmediate(() => {
      this.#kickScheduled = false;
      this.#kick();
    });
  }

  /** Resolves on {@link #kick} or after `ms`. */
  #sleepUntilKicked(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(1, ms));
      const self = this;
      function done(): void {
        clearTimeout(t);
        if (self.#wake === done) self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }

  /** A JetStream acknowledgement (or error status) for one published event. */
  #onAck(err: Error | null, msg: Msg): void {
    const token = msg.subject.slice(this.#inbox.length + 1);
    const item = this.#awaiting.get(token);
    if (item === undefined) return;
    this.#awaiting.delete(token);
    if (err !== null) item.result = err;
    else if (msg.headers?.hasError === true) {
      item.result = new Error(`JetStream publish failed: ${msg.headers.code} ${msg.headers.description}`);
    } else {
      try {
        const a = JSON.parse(msg.string()) as {
          stream?: string;
          duplicate?: boolean;
          error?: { description?: string };
        };
        if (a.error !== undefined || typeof a.stream !== "string" || a.stream === "") {
          item.result = new Error(`JetStream publish failed: ${a.error?.description ?? "invalid ack response"}`);
        } else item.result = { duplicate: a.duplicate === true };
      } catch (e) {
        item.result = e instanceof Error ? e : new Error(String(e));
      }
    }
    if (item === this.#items[0]) this.#kick();
  }

  /** Publishes and collects acknowledgements until stopped; throws on any failure. */
  async #ship(): Promise<void> {
    const nc = this.#nc as NatsConnection;
    while (this.#running) {
      // Collect the acknowledged prefix, in order.
      let head = this.#items[0];
      let progressed = false;
      while (head !== undefined && head.result !== undefined) {
        if (head.result instanceof Error) throw head.result;
        this.#items.shift();
        head.trace?.span.end();
        this.#sentCount--;
        progressed = true;
        if (head.result.duplicate) this.stats.duplicates++;
        else {
          this.stats.shipped++;
          this.#latencyListener?.(performance.now() - head.publishedAt, head.sequence);
        }
        this.#ackedSequence = head.sequence;
        this.#lastPrefix = head.subjectPrefix;
        this.#ackedHash = head.hash;
        if (head.stateAfter !== undefined) {
          this.#acked = head.stateAfter;
          this.#schedulePersist();
        }
        head = this.#items[0];
      }
      // Refill in batches (half a window at a time), not one journal read per acknowledgement.
      if (this.#items.length <= this.#o.maxInFlight / 2 && this.#cursor < this.#o.journal.durableEnd) {
        await this.#prepare(this.#o.maxInFlight - this.#items.length);
      }
      // Fill the window: everything published here goes out in one socket write.
      let published = false;
      while (this.#sentCount < this.#items.length && this.#sentCount < this.#o.maxInFlight) {
        this.#send(nc, this.#items[this.#sentCount] as Item);
        this.#sentCount++;
        published = true;
      }
      if (nc.isClosed()) throw new Error("NATS connection closed");
      if (published || progressed) continue;
      head = this.#items[0];
      if (head === undefined) {
        if (this.#cursor < this.#o.journal.durableEnd) continue;
        await this.#sleepUntilKicked(1000);
        continue;
      }
      const left = head.sentAt + this.#o.ackTimeoutMs - performance.now();
      if (left <= 0) throw new Error(`no JetStream acknowledgement within ${this.#o.ackTimeoutMs} ms`);
      await this.#sleepUntilKicked(left);
    }
  }

  #send(nc: NatsConnection, item: Item): void {
    const now = performance.now();
    if (item.publishedAt === 0) item.publishedAt = now;
    const token = item.sequence.toString();
    const h = headers();
    h.set("Nats-Msg-Id", item.msgId);
    if (item.trace !== undefined) h.set(TRACEPARENT_HEADER, item.trace.traceparent);
    item.sent = true;
    item.result = undefined;
    this.#awaiting.set(token, item);
    // The ack timeout runs from this send (a republished item gets a fresh one).
    item.sentAt = now;
    nc.publish(item.subject, item.data, { reply: `${this.#inbox}.${token}`, headers: h });
  }

  /** Reads journal records into chained items; returns how many items were added. */
  async #prepare(room: number): Promise<number> {
    const records = await this.#o.journal.read(this.#cursor, Math.max(64 * 1024, room * 1024));
    if (records.length === 0) return 0;
    const produced: Item[] = [];
    let lastItemRecord = -1;
    // Stop after the record that fills the window; a Start record's items stay together.
    let used = 0;
    for (let i = 0; i < records.length; i++) {
      const t = (records[i] as JournalRecord).type;
      if (t === JournalRecordType.Completion || t === JournalRecordType.Final) used++;
      else if (t === JournalRecordType.Start) used += this.#pending.size;
      if (used >= room) {
        records.length = i + 1;
        break;
      }
    }
    for (let i = 0; i < records.length; i++) {
      const t = (records[i] as JournalRecord).type;
      if (
        t === JournalRecordType.Completion ||
        t === JournalRecordType.Final ||
        (t === JournalRecordType.Start && this.#pending.size > 0)
      ) {
        lastItemRecord = i;
      }
    }
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as JournalRecord;
      if (r.type === JournalRecordType.Intent) {
        this.#pending.set(journalEventId(r.payload), r.offset);
      } else if (r.type === JournalRecordType.Completion) {
        const { subjectPrefix, event } = decodeJournalEvent(r.payload);
        this.#pending.delete(event.eventId);
        produced.push(this.#chain(subjectPrefix, event));
      } else if (r.type === JournalRecordType.Final) {
        const encoded = decodeFinalPayload(r.payload);
        this.#pending.delete(encoded.eventId);
        produced.push(this.#chainEncoded(encoded));
      } else if (r.type === JournalRecordType.Start) {
        const interrupted = [...this.#pending.values()].sort((a, b) => a - b);
        this.#pending.clear();
        for (const off of interrupted) {
          const [intent] = await this.#o.journal.read(off, 1);
          if (intent === undefined || intent.type !== JournalRecordType.Intent) {
            throw new Error(`journal record at ${off} is not the expected intent`);
          }
          const { subjectPrefix, event } = decodeJournalEvent(intent.payload);
          produced.push(this.#chain(subjectPrefix, interruptedEvent(event)));
          this.stats.interrupted++;
        }
      }
      this.#cursor = r.nextOffset;
      if (i === lastItemRecord) {
        const last = produced[produced.length - 1] as Item;
        last.stateAfter = {
          offset: this.#cursor,
          sequence: this.#sequence,
          hash: this.#hash,
          pending: [...this.#pending],
        };
      }
    }
    this.#items.push(...produced);
    return produced.length;
  }

  #chain(subjectPrefix: string, event: AuditEvent): Item {
    this.#sequence += 1n;
    this.#hash = chainEvent(event, this.#sequence, this.#hash);
    const subject = auditSubject(subjectPrefix, {
      connection: event.tollgate?.connection ?? "",
      principal: event.userIdentity?.principalId ?? "",
      service: event.tollgate?.signingName ?? "",
      operation: event.eventName,
    });
    return {
      subject,
      data: auditEventToJson(event),
      msgId: event.eventId,
      sequence: this.#sequence,
      hash: this.#hash,
      stateAfter: undefined,
      subjectPrefix,
      sent: false,
      result: undefined,
      publishedAt: 0,
      sentAt: 0,
      trace: startPublishSpan(this.#o.tracer, eventTraceIds(event), subject, subjectPrefix, this.#sequence),
    };
  }

  /** Chains an event encoded once at completion (see audit-wire.ts), decoding it only if the splice declines. */
  #chainEncoded(e: EncodedAuditEvent): Item {
    const sequence = this.#sequence + 1n;
    const chained = chainEncodedEvent(e, sequence, this.#hash);
    if (chained === undefined) return this.#chain(e.subjectPrefix, fromBinary(AuditEventSchema, e.binary));
    this.#sequence = sequence;
    this.#hash = chained.hash;
    return {
      subject: e.subject,
      data: chained.json,
      msgId: e.eventId,
      sequence,
      hash: chained.hash,
      stateAfter: undefined,
      subjectPrefix: e.subjectPrefix,
      sent: false,
      result: undefined,
      publishedAt: 0,
      sentAt: 0,
      trace: startPublishSpan(
        this.#o.tracer,
        eventTraceIdsFromJson(e.eventId, chained.json),
        e.subject,
        e.subjectPrefix,
        sequence,
      ),
    };
  }

  async #checkpoint(): Promise<boolean> {
    const js = this.#js;
    const prefix = this.#o.subjectPrefix() ?? this.#lastPrefix;
    if (js === undefined || prefix === "") return false;
    const cp = signCheckpoint(this.#o.signingKey, {
      edge: this.#o.edge,
      sequence: this.#ackedSequence,
      hash: this.#ackedHash,
    });
    try {
      await js.publish(auditCheckpointSubject(prefix, this.#o.edge), toJsonString(CheckpointSchema, cp), {
        msgID: `checkpoint-${this.#o.edge}-${cp.sequence}-${cp.time}`,
        timeout: this.#o.ackTimeoutMs,
      });
      this.stats.checkpoints++;
      return true;
    } catch (err) {
      this.#o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "checkpoint publish failed");
      return false;
    }
  }

  /**
   * Writes the acknowledged state soon, at most once per {@link PERSIST_INTERVAL_MS}: each write
   * costs two fsyncs, and a state that lags a little only means a longer (deduplicated) replay
   * after a crash.
   */
  #schedulePersist(): void {
    if (this.#persisting !== undefined) {
      this.#persistAgain = true;
      return;
    }
    this.#persisting = (async () => {
      do {
        this.#persistAgain = false;
        const wait = this.#lastPersistAt + PERSIST_INTERVAL_MS - performance.now();
        if (wait > 0 && this.#running) await sleep(wait);
        this.#lastPersistAt = performance.now();
        await this.#persist().catch((err: unknown) =>
          this.#o.logger.error(
            { err: err instanceof Error ? err.message : String(err) },
            "cannot persist shipper state",
          ),
        );
      } while (this.#persistAgain);
      this.#persisting = undefined;
    })();
  }

  async #persist(): Promise<void> {
    const s = this.#acked;
    if (s === undefined || s === this.#state) return;
    const tmp = `${this.#o.stateFile}.tmp`;
    const body = JSON.stringify({
      version: STATE_VERSION,
      offset: s.offset,
      sequence: s.sequence.toString(),
      hash: s.hash,
      pending: s.pending,
    });
    const fh = await fs.promises.open(tmp, "w", 0o600);
    try {
      await fh.writeFile(body);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, this.#o.stateFile);
    await fsyncDir(join(this.#o.stateFile, ".."));
    this.#state = s;
    await this.#o.journal.release(lowWatermark(s));
  }

  async #loadState(): Promise<ShipperState> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.#o.stateFile, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      return { offset: this.#o.journal.startOffset, sequence: 0n, hash: "", pending: [] };
    }
    const raw = JSON.parse(text) as {
      version: number;
      offset: number;
      sequence: string;
      hash: string;
      pending: Array<[string, number]>;
    };
    if (raw.version !== STATE_VERSION)
      throw new Error(`${this.#o.stateFile}: unsupported state version ${raw.version}`);
    return { offset: raw.offset, sequence: BigInt(raw.sequence), hash: raw.hash, pending: raw.pending };
  }
}

function lowWatermark(s: ShipperState): number {
  let low = s.offset;
  for (const [, off] of s.pending) low = Math.min(low, off);
  return low;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
