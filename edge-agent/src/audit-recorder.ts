import type { NatsConnection } from "@nats-io/transport-node";
import type { AuditEvent } from "@tollgate/proto";
import type { EdgeSigningKey } from "@tollgate/sdk";
import { AuditJournal, type JournalAppendOptions, JournalRecordType } from "./audit-journal.js";
import { AuditShipper, encodeJournalEvent } from "./audit-shipper.js";
import { encodeAuditEvent, encodeFinalPayload } from "./audit-wire.js";
import { type Logger, silentLogger } from "./logger.js";

/**
 * The request path's view of auditing: durable before acting.
 *
 *   const call = await recorder.begin(intentEvent);   // journaled + fsynced, or throws
 *   ... forward to AWS, stream the response back ...
 *   await recorder.complete(call, finalEvent);        // journaled; shipped to JetStream
 *
 * A call refused before forwarding has one event: `await recorder.record(event)`.
 * If `begin` throws {@link AuditUnavailableError} the edge must not forward the call and answers
 * with an AWS-shaped 503 (fail closed) — unless the connection is listed in
 * `failOpenConnections`, in which case `begin` returns an unjournaled handle and the call goes
 * through unrecorded if the journal cannot take it (documented, per connection, default none).
 */

/** Options for {@link AuditRecorder.open}. */
export interface AuditRecorderOptions {
  /** Journal directory, e.g. `$TOLLGATE_HOME/edge/journal`. */
  dir: string;
  /** Opens a NATS connection for shipping (create it with `reconnect: false`). */
  connect: () => Promise<NatsConnection>;
  /** This edge's name (checkpoints and chain are per edge). */
  edge: string;
  /** Ed25519 checkpoint key (see `loadOrCreateEdgeSigningKey`). */
  signingKey: EdgeSigningKey;
  /** Subject prefix for events journaled now and for checkpoints. */
  subjectPrefix: () => string;
  /**
   * Connections whose calls are forwarded even when the journal cannot record them
   * (`"*"` = all). Default none: every connection fails closed.
   */
  failOpenConnections?: readonly string[] | "*";
  /** Bound on the un-shipped journal backlog, bytes. Default 1 GiB. */
  maxBytes?: number;
  /** Journal segment size, bytes. Default 64 MiB. */
  segmentBytes?: number;
  /** Longest wait for a final event's journal commit (see `AuditJournalOptions`). Default 5 ms. */
  deferredSyncMs?: number;
  /** Checkpoint period, ms (≤ 10000). Default 5000. */
  checkpointIntervalMs?: number;
  /** Most unacknowledged JetStream publishes. Default 256. */
  maxInFlight?: number;
  logger?: Logger;
}

/** `begin` could not record the intent; the edge must refuse the call (503). */
export class AuditUnavailableError extends Error {
  override readonly name = "AuditUnavailableError";
  readonly code = "ERR_AUDIT_UNAVAILABLE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A call between {@link AuditRecorder.begin} and {@link AuditRecorder.complete}. */
export interface CallHandle {
  readonly eventId: string;
  /** False when the intent could not be journaled and the connection fails open. */
  readonly journaled: boolean;
  readonly subjectPrefix: string;
}

const FINAL: JournalAppendOptions = { deferSync: true };
const FINAL_COMPLETING: JournalAppendOptions = { deferSync: true, completesIntent: true };

/** Room kept under `maxBytes` before {@link AuditRecorder.healthy} turns false. */
const RESERVE_BYTES = 1024 * 1024;

/**
 * Where a {@link AuditCallRecorder} appends: the journal itself, or (in an edge worker process)
 * the journal of the primary process over IPC (see edge-workers.ts).
 */
export interface AuditAppender {
  /** Appends one record; resolves once it is durable (see `AuditJournal.append` for the options). */
  append(type: JournalRecordType, payload: Uint8Array, options?: JournalAppendOptions): Promise<number>;
  /** False when the journal cannot take more calls. */
  readonly healthy: boolean;
}

/** Options of {@link AuditCallRecorder}. */
export interface AuditCallRecorderOptions {
  subjectPrefix: () => string;
  failOpenConnections?: readonly string[] | "*";
  logger?: Logger;
}

/**
 * The request path's recorder (begin / complete / record) over an {@link AuditAppender}: it
 * encodes the events and applies the fail-open switch. {@link AuditRecorder} is this plus the
 * journal and the shipper of the process.
 */
export class AuditCallRecorder {
  readonly #co: AuditCallRecorderOptions;
  readonly #appender: AuditAppender;
  readonly #failOpen: ReadonlySet<string> | "*";
  readonly #logger: Logger;

  constructor(options: AuditCallRecorderOptions, appender: AuditAppender) {
    this.#co = options;
    this.#appender = appender;
    const fo = options.failOpenConnections ?? [];
    this.#failOpen = fo === "*" ? "*" : new Set(fo);
    this.#logger = options.logger ?? silentLogger;
  }

  /** False when the journal cannot take more calls (write failure, or backlog near `maxBytes`). */
  get healthy(): boolean {
    return this.#appender.healthy;
  }

  /** True when calls on `connection` are forwarded even if they cannot be journaled. */
  failOpenFor(connection: string): boolean {
    return this.#failOpen === "*" || this.#failOpen.has(connection);
  }

  /**
   * Journals the call's intent (the event as known before forwarding) and resolves once it is
   * fsynced. Call it after the decision and before forwarding. Throws
   * {@link AuditUnavailableError} when it cannot record and the connection fails closed.
   */
  async begin(event: AuditEvent): Promise<CallHandle> {
    const subjectPrefix = this.#co.subjectPrefix();
    try {
      await this.#appender.append(JournalRecordType.Intent, encodeJournalEvent(subjectPrefix, event));
      return { eventId: event.eventId, journaled: true, subjectPrefix };
    } catch (err) {
      const connection = event.tollgate?.connection ?? "";
      if (this.failOpenFor(connection)) {
        this.#logger.error(
          { err: err instanceof Error ? err.message : String(err), eventID: event.eventId, connection },
          "audit journal unavailable; forwarding unrecorded (fail-open connection)",
        );
        return { eventId: event.eventId, journaled: false, subjectPrefix };
      }
      throw new AuditUnavailableError("the audit journal cannot record this call", { cause: err });
    }
  }

  /**
   * Journals the call's final event (same eventID as its intent); it is then shipped. Sets
   * `tollgate.outcome` to "completed" (in place) when unset. A completion is accepted even when
   * the backlog is at `maxBytes` (see `AuditJournal.append`). Never rejects: resolves false (and
   * logs) when the completion could not be journaled (I/O failure, journal closed) — after a
   * restart the intent is then shipped with outcome "unknown".
   */
  async complete(handle: CallHandle, finalEvent: AuditEvent): Promise<boolean> {
    if (finalEvent.eventId !== handle.eventId) {
      throw new TypeError(`completion ${finalEvent.eventId} does not match intent ${handle.eventId}`);
    }
    return this.#append(handle.subjectPrefix, finalEvent, handle.journaled);
  }

  /**
   * Journals the single event of a call that was never forwarded (refused by the edge).
   * Resolves false (and logs) if it could not be recorded.
   */
  record(event: AuditEvent): Promise<boolean> {
    return this.#append(this.#co.subjectPrefix(), event);
  }

  async #append(subjectPrefix: string, event: AuditEvent, completesIntent = false): Promise<boolean> {
    if (event.tollgate !== undefined && event.tollgate.outcome === "") event.tollgate.outcome = "completed";
    try {
      // Encoded once here (protobuf + JSON); the shipper only splices the chain fields in.
      // Nothing waits for a final event's fsync before acting (the response is not held for
      // it), so it rides along with the next intent's commit (see AuditJournal, `deferSync`).
      await this.#appender.append(
        JournalRecordType.Final,
        encodeFinalPayload(encodeAuditEvent(subjectPrefix, event)),
        completesIntent ? FINAL_COMPLETING : FINAL,
      );
      return true;
    } catch (err) {
      this.#logger.error(
        { err: err instanceof Error ? err.message : String(err), eventID: event.eventId },
        "audit event could not be journaled",
      );
      return false;
    }
  }
}

/** Journal + shipper + checkpoints behind a small request-path API; see the module comment. */
export class AuditRecorder extends AuditCallRecorder {
  readonly journal: AuditJournal;
  readonly shipper: AuditShipper;
  readonly #o: AuditRecorderOptions;

  private constructor(o: AuditRecorderOptions, journal: AuditJournal, shipper: AuditShipper) {
    super(
      {
        subjectPrefix: o.subjectPrefix,
        ...(o.failOpenConnections !== undefined ? { failOpenConnections: o.failOpenConnections } : {}),
        ...(o.logger !== undefined ? { logger: o.logger } : {}),
      },
      {
        append: (type, payload, options) => journal.append(type, payload, options),
        get healthy() {
          return journal.healthy && !journal.nearlyFull(RESERVE_BYTES);
        },
      },
    );
    this.#o = o;
    this.journal = journal;
    this.shipper = shipper;
  }

  /** Opens the journal (repairing a torn tail) and starts shipping and checkpointing. */
  static async open(options: AuditRecorderOptions): Promise<AuditRecorder> {
    const journal = await AuditJournal.open({
      dir: options.dir,
      ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
      ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
      ...(options.deferredSyncMs !== undefined ? { deferredSyncMs: options.deferredSyncMs } : {}),
    });
    const shipper = new AuditShipper({
      journal,
      connect: options.connect,
      edge: options.edge,
      signingKey: options.signingKey,
      subjectPrefix: options.subjectPrefix,
      ...(options.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
      ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    await shipper.start();
    return new AuditRecorder(options, journal, shipper);
  }

  /** Public key (PEM) and id that verify this edge's checkpoints; register them with the control plane. */
  get publicKeyPem(): string {
    return this.#o.signingKey.publicKeyPem;
  }

  /** Id of the checkpoint key. */
  get keyId(): string {
    return this.#o.signingKey.keyId;
  }

  /** Stops shipping (waiting up to `drainMs` for the backlog to ship) and closes the journal. */
  async close(drainMs = 2000): Promise<void> {
    // Final events wait up to a few ms for a commit (`deferSync`): commit them now, so the
    // drain below ships them instead of leaving them to the next start.
    await this.journal.sync().catch(() => {});
    await this.shipper.close(drainMs);
    await this.journal.close();
  }
}
