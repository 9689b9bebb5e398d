import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type { AuditEvent } from "@tollgate/proto";
import Database from "better-sqlite3";

/** Filter for {@link AuditIndex.query}; unset fields match everything. */
export interface AuditQuery {
  principal?: string | undefined;
  connection?: string | undefined;
  /** Signing name (`tollgate.signingName`) or event source prefix (`s3` matches `s3.amazonaws.com`). */
  service?: string | undefined;
  /** Operation (eventName). */
  operation?: string | undefined;
  /** Exact resource ARN among the event's `resources`. */
  resourceArn?: string | undefined;
  /** `tollgate.decision` enum value (1 allow, 2 deny); 0 or unset matches both. */
  decision?: number | undefined;
  /** Exact `errorCode`. */
  errorCode?: string | undefined;
  /** Inclusive lower bound, Unix ms. */
  sinceMs?: number | undefined;
  /** Exclusive upper bound, Unix ms. */
  untilMs?: number | undefined;
  /** Return rows strictly older than this position (from the previous page). */
  after?: AuditCursor | undefined;
  /** Maximum rows. */
  limit: number;
}

/** A position in newest-first order. */
export interface AuditCursor {
  eventTimeMs: number;
  streamSeq: number;
}

/** One indexed event. */
export interface IndexedEvent extends AuditCursor {
  json: string;
}

/** Columns extracted from an event for indexing. */
export interface IndexableEvent {
  eventId: string;
  eventTimeMs: number;
  principal: string;
  connection: string;
  service: string;
  eventSource: string;
  operation: string;
  /** `tollgate.decision` enum value. */
  decision: number;
  /** `errorCode`, "" when none. */
  errorCode: string;
  /** `tollgate.edge`. */
  edge: string;
  /** `tollgate.sequence` (0 when unchained). */
  chainSeq: bigint;
  /** `tollgate.hash` ("" when unchained). */
  chainHash: string;
  /** Resource ARNs the event names. */
  resourceArns: string[];
  streamSeq: number;
  json: string;
}

/** An edge's last verified chain position, persisted so verification resumes after a restart. */
export interface ChainHead {
  edge: string;
  sequence: bigint;
  hash: string;
  eventId: string;
}

/** An integrity alert as stored in the index. */
export interface StoredAlert {
  alertId: string;
  timeMs: number;
  edge: string;
  kind: string;
  sequence: bigint;
  eventId: string;
  detail: string;
  streamSeq: number;
}

/** Bump when the schema changes: an index of another version is dropped and rebuilt from the stream. */
const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_events (
  event_id      TEXT    NOT NULL UNIQUE,
  event_time_ms INTEGER NOT NULL,
  principal     TEXT    NOT NULL,
  connection    TEXT    NOT NULL,
  service       TEXT    NOT NULL,
  event_source  TEXT    NOT NULL,
  operation     TEXT    NOT NULL,
  decision      INTEGER NOT NULL,
  error_code    TEXT    NOT NULL,
  edge          TEXT    NOT NULL,
  chain_seq     INTEGER NOT NULL,
  chain_hash    TEXT    NOT NULL,
  stream_seq    INTEGER NOT NULL,
  json          TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_principal ON audit_events (principal, event_time_ms, stream_seq);
CREATE INDEX IF NOT EXISTS audit_events_connection ON audit_events (connection, event_time_ms, stream_seq);
CREATE INDEX IF NOT EXISTS audit_events_service ON audit_events (service, operation, event_time_ms);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (event_time_ms, stream_seq);
CREATE INDEX IF NOT EXISTS audit_events_decision ON audit_events (decision, event_time_ms);
CREATE INDEX IF NOT EXISTS audit_events_error_code ON audit_events (error_code, event_time_ms) WHERE error_code <> '';
CREATE TABLE IF NOT EXISTS event_resources (
  event_id TEXT NOT NULL,
  arn      TEXT NOT NULL,
  PRIMARY KEY (arn, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS integrity_heads (
  edge      TEXT PRIMARY KEY,
  sequence  INTEGER NOT NULL,
  hash      TEXT NOT NULL,
  event_id  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS integrity_alerts (
  alert_id   TEXT PRIMARY KEY,
  time_ms    INTEGER NOT NULL,
  edge       TEXT NOT NULL,
  kind       TEXT NOT NULL,
  sequence   INTEGER NOT NULL,
  event_id   TEXT NOT NULL,
  detail     TEXT NOT NULL,
  stream_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS integrity_alerts_time ON integrity_alerts (time_ms);
CREATE TABLE IF NOT EXISTS integrity_state (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
`;

const DROP = `
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS event_resources;
DROP TABLE IF EXISTS integrity_heads;
DROP TABLE IF EXISTS integrity_alerts;
DROP TABLE IF EXISTS integrity_state;
`;

/** Extracts the indexed columns of an event; throws on an event that cannot be indexed. */
export function indexableEvent(event: AuditEvent, streamSeq: number, json: string): IndexableEvent {
  if (event.eventId === "") throw new Error("eventID missing");
  const eventTimeMs = Date.parse(event.eventTime);
  if (!Number.isFinite(eventTimeMs)) throw new Error(`eventTime ${JSON.stringify(event.eventTime)} is not a time`);
  const signingName = event.tollgate?.signingName ?? "";
  return {
    eventId: event.eventId,
    eventTimeMs,
    principal: event.userIdentity?.principalId ?? "",
    connection: event.tollgate?.connection ?? "",
    service: signingName !== "" ? signingName : (event.eventSource.split(".")[0] ?? ""),
    eventSource: event.eventSource,
    operation: event.eventName,
    decision: event.tollgate?.decision ?? 0,
    errorCode: event.errorCode ?? "",
    edge: event.tollgate?.edge ?? "",
    chainSeq: event.tollgate?.sequence ?? 0n,
    chainHash: event.tollgate?.hash ?? "",
    resourceArns: [...new Set(event.resources.map((r) => r.arn).filter((a) => a !== ""))],
    streamSeq,
    json,
  };
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

type Params = Record<string, string | number | bigint>;

/**
 * The audit query index: a SQLite database (WAL) with one row per event id, the resource ARNs
 * each event names, and the integrity verifier's state (per-edge chain heads, alerts). It is a
 * cache of the JetStream audit stream and can be rebuilt from it; duplicates (same eventID) are
 * ignored.
 */
export class AuditIndex {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #insertResource: Database.Statement;
  readonly #insertTx: (rows: readonly IndexableEvent[]) => number;
  readonly #tx: <T>(fn: () => T) => T;
  readonly #eventById: Database.Statement;
  readonly #setChainHead: Database.Statement;
  readonly #integrityStreamSeq: Database.Statement;
  readonly #setIntegrityStreamSeq: Database.Statement;
  readonly #insertAlert: Database.Statement;
  /** True when this open created the database (new file or schema rebuilt), so the ingest should replay the stream. */
  readonly created: boolean;

  /** @param path database file, or `:memory:`. */
  constructor(path: string) {
    const isFile = path !== ":memory:";
    let created = !isFile || !existsSync(path);
    if (isFile && created) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Create it private; SQLite gives the -wal and -shm files the same mode.
      closeSync(openSync(path, "a", 0o600));
    }
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    // The ingest runs each event in a savepoint of its batch's transaction; SQLite keeps a
    // savepoint's undo pages in a temp file by default (two writes per page touched), in memory here.
    this.#db.pragma("temp_store = MEMORY");
    const version = this.#db.pragma("user_version", { simple: true }) as number;
    if (version !== SCHEMA_VERSION) {
      // An index from an older release (or a new file): rebuild it from the stream.
      this.#db.exec(DROP);
      this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
      created = true;
    }
    this.created = created;
    this.#db.exec(SCHEMA);
    this.#insert = this.#db.prepare(
      `INSERT OR IGNORE INTO audit_events
         (event_id, event_time_ms, principal, connection, service, event_source, operation,
          decision, error_code, edge, chain_seq, chain_hash, stream_seq, json)
       VALUES (@eventId, @eventTimeMs, @principal, @connection, @service, @eventSource, @operation,
          @decision, @errorCode, @edge, @chainSeq, @chainHash, @streamSeq, @json)`,
    );
    this.#insertResource = this.#db.prepare("INSERT OR IGNORE INTO event_resources (event_id, arn) VALUES (?, ?)");
    this.#insertTx = this.#db.transaction((rows: readonly IndexableEvent[]) => {
      let n = 0;
      for (const row of rows) if (this.#insertOne(row)) n++;
      return n;
    });
    // One transaction function for every transaction(fn) (better-sqlite3 builds four wrappers per call).
    this.#tx = this.#db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T;
    // Statements the ingest runs per event, prepared once.
    this.#eventById = this.#db.prepare("SELECT json, chain_hash AS chainHash FROM audit_events WHERE event_id = ?");
    this.#setChainHead = this.#db.prepare(
      `INSERT INTO integrity_heads (edge, sequence, hash, event_id) VALUES (@edge, @sequence, @hash, @eventId)
       ON CONFLICT (edge) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, event_id = excluded.event_id`,
    );
    this.#integrityStreamSeq = this.#db.prepare("SELECT value FROM integrity_state WHERE name = 'stream_seq'");
    this.#setIntegrityStreamSeq = this.#db.prepare(
      `INSERT INTO integrity_state (name, value) VALUES ('stream_seq', ?)
       ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`,
    );
    this.#insertAlert = this.#db.prepare(
      `INSERT OR IGNORE INTO integrity_alerts (alert_id, time_ms, edge, kind, sequence, event_id, detail, stream_seq)
       VALUES (@alertId, @timeMs, @edge, @kind, @sequence, @eventId, @detail, @streamSeq)`,
    );
  }

  #insertOne(row: IndexableEvent): boolean {
    const { resourceArns: _arns, ...columns } = row;
    if (this.#insert.run(columns).changes !== 1) return false;
    for (const arn of row.resourceArns) this.#insertResource.run(row.eventId, arn);
    return true;
  }

  /** Inserts an event; returns false when its event id was already indexed. */
  insert(event: IndexableEvent): boolean {
    return this.#insertTx([event]) === 1;
  }

  /** Inserts many events in one transaction; returns how many were new. */
  insertMany(events: readonly IndexableEvent[]): number {
    return this.#insertTx(events);
  }

  /**
   * Runs `fn` in one transaction. A nested call runs in a savepoint of the enclosing transaction:
   * when it throws, only its own changes are undone.
   */
  transaction<T>(fn: () => T): T {
    return this.#tx(fn);
  }

  /**
   * True while a transaction is open. After a statement failed inside a transaction, false means
   * SQLite rolled the whole transaction back (it does so on some errors, e.g. disk full or I/O).
   */
  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }

  #where(q: Omit<AuditQuery, "limit">): { sql: string; params: Params } {
    const where: string[] = [];
    const params: Params = {};
    if (q.principal) {
      where.push("principal = @principal");
      params.principal = q.principal;
    }
    if (q.connection) {
      where.push("connection = @connection");
      params.connection = q.connection;
    }
    if (q.service) {
      where.push("(service = @service OR event_source LIKE @serviceLike ESCAPE '\\')");
      params.service = q.service;
      params.serviceLike = `${escapeLike(q.service)}.%`;
    }
    if (q.operation) {
      where.push("operation = @operation");
      params.operation = q.operation;
    }
    if (q.resourceArn) {
      where.push("event_id IN (SELECT event_id FROM event_resources WHERE arn = @resourceArn)");
      params.resourceArn = q.resourceArn;
    }
    if (q.decision) {
      where.push("decision = @decision");
      params.decision = q.decision;
    }
    if (q.errorCode) {
      where.push("error_code = @errorCode");
      params.errorCode = q.errorCode;
    }
    if (q.sinceMs !== undefined) {
      where.push("event_time_ms >= @sinceMs");
      params.sinceMs = q.sinceMs;
    }
    if (q.untilMs !== undefined) {
      where.push("event_time_ms < @untilMs");
      params.untilMs = q.untilMs;
    }
    if (q.after !== undefined) {
      where.push("(event_time_ms < @afterTime OR (event_time_ms = @afterTime AND stream_seq < @afterSeq))");
      params.afterTime = q.after.eventTimeMs;
      params.afterSeq = q.after.streamSeq;
    }
    return { sql: where.length > 0 ? `WHERE ${where.join(" AND ")}` : "", params };
  }

  /** Matching events, newest first (event time, then stream sequence). */
  query(q: AuditQuery): IndexedEvent[] {
    const { sql, params } = this.#where(q);
    params.limit = q.limit;
    return this.#db
      .prepare(
        `SELECT event_time_ms AS eventTimeMs, stream_seq AS streamSeq, json FROM audit_events ${sql}
         ORDER BY event_time_ms DESC, stream_seq DESC LIMIT @limit`,
      )
      .all(params) as IndexedEvent[];
  }

  /** Number of indexed events matching `q` (all events without one); `after` and `limit` are ignored. */
  count(q: Omit<AuditQuery, "limit" | "after"> = {}): number {
    const { sql, params } = this.#where(q);
    return (this.#db.prepare(`SELECT count(*) AS n FROM audit_events ${sql}`).get(params) as { n: number }).n;
  }

  /** The stored JSON and chain hash of an event, by id. */
  eventById(eventId: string): { json: string; chainHash: string } | undefined {
    return this.#eventById.get(eventId) as { json: string; chainHash: string } | undefined;
  }

  /** Every persisted chain head. */
  chainHeads(): ChainHead[] {
    const rows = this.#db
      .prepare("SELECT edge, CAST(sequence AS TEXT) AS sequence, hash, event_id AS eventId FROM integrity_heads")
      .all() as Array<{ edge: string; sequence: string; hash: string; eventId: string }>;
    return rows.map((r) => ({ ...r, sequence: BigInt(r.sequence) }));
  }

  /** Persists an edge's chain head. */
  setChainHead(head: ChainHead): void {
    this.#setChainHead.run(head);
  }

  /** Highest stream sequence the integrity verifier has processed (0 if none). */
  integrityStreamSeq(): number {
    const row = this.#integrityStreamSeq.get() as { value: number } | undefined;
    return row?.value ?? 0;
  }

  /** Highest stream sequence this index has fully handled: ingest resumes right after it. */
  resumeStreamSeq(): number {
    const row = this.#db.prepare("SELECT MAX(stream_seq) AS seq FROM audit_events").get() as
      | { seq: number | null }
      | undefined;
    return Math.max(row?.seq ?? 0, this.integrityStreamSeq());
  }

  /** Records the highest stream sequence the integrity verifier has processed. */
  setIntegrityStreamSeq(streamSeq: number): void {
    this.#setIntegrityStreamSeq.run(streamSeq);
  }

  /** Stores an integrity alert. */
  insertAlert(alert: StoredAlert): void {
    this.#insertAlert.run(alert);
  }

  /** Stored alerts, newest first. */
  alerts(q: { edge?: string | undefined; sinceMs?: number | undefined; limit: number }): StoredAlert[] {
    const where: string[] = [];
    const params: Params = { limit: q.limit };
    if (q.edge) {
      where.push("edge = @edge");
      params.edge = q.edge;
    }
    if (q.sinceMs !== undefined) {
      where.push("time_ms >= @sinceMs");
      params.sinceMs = q.sinceMs;
    }
    const rows = this.#db
      .prepare(
        `SELECT alert_id AS alertId, time_ms AS timeMs, edge, kind, CAST(sequence AS TEXT) AS sequence,
                event_id AS eventId, detail, stream_seq AS streamSeq
         FROM integrity_alerts ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY time_ms DESC, stream_seq DESC, rowid DESC LIMIT @limit`,
      )
      .all(params) as Array<Omit<StoredAlert, "sequence"> & { sequence: string }>;
    return rows.map((r) => ({ ...r, sequence: BigInt(r.sequence) }));
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
