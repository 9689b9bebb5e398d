import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type { AuditEvent } from "@tollgate/proto";
import Database from "better-sqlite3";

/** Filter for {@link AuditIndex.query}; unset fields match everything. */
export interface AuditQuery {
  principal?: string;
  connection?: string;
  /** Signing name (`tollgate.signingName`) or event source prefix (`s3` matches `s3.amazonaws.com`). */
  service?: string;
  /** Operation (eventName). */
  operation?: string;
  /** Inclusive lower bound, Unix ms. */
  sinceMs?: number;
  /** Exclusive upper bound, Unix ms. */
  untilMs?: number;
  /** Return rows strictly older than this position (from the previous page). */
  after?: AuditCursor;
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
  streamSeq: number;
  json: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_events (
  event_id      TEXT    NOT NULL UNIQUE,
  event_time_ms INTEGER NOT NULL,
  principal     TEXT    NOT NULL,
  connection    TEXT    NOT NULL,
  service       TEXT    NOT NULL,
  event_source  TEXT    NOT NULL,
  operation     TEXT    NOT NULL,
  stream_seq    INTEGER NOT NULL,
  json          TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_principal ON audit_events (principal, event_time_ms);
CREATE INDEX IF NOT EXISTS audit_events_connection ON audit_events (connection, event_time_ms);
CREATE INDEX IF NOT EXISTS audit_events_service ON audit_events (service, operation, event_time_ms);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (event_time_ms);
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
    streamSeq,
    json,
  };
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The audit query index: a SQLite database (WAL) with one row per event id. It is a cache of
 * the JetStream audit stream and can be rebuilt from it; duplicates (same eventID) are ignored.
 */
export class AuditIndex {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  /** True when this open created the database file (so the ingest should replay the stream). */
  readonly created: boolean;

  /** @param path database file, or `:memory:`. */
  constructor(path: string) {
    const isFile = path !== ":memory:";
    this.created = !isFile || !existsSync(path);
    if (isFile && this.created) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Create it private; SQLite gives the -wal and -shm files the same mode.
      closeSync(openSync(path, "a", 0o600));
    }
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.exec(SCHEMA);
    this.#insert = this.#db.prepare(
      `INSERT OR IGNORE INTO audit_events
         (event_id, event_time_ms, principal, connection, service, event_source, operation, stream_seq, json)
       VALUES (@eventId, @eventTimeMs, @principal, @connection, @service, @eventSource, @operation, @streamSeq, @json)`,
    );
  }

  /** Inserts an event; returns false when its event id was already indexed. */
  insert(event: IndexableEvent): boolean {
    return this.#insert.run(event).changes === 1;
  }

  /** Matching events, newest first (event time, then stream sequence). */
  query(q: AuditQuery): IndexedEvent[] {
    const where: string[] = [];
    const params: Record<string, string | number> = {};
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
    params.limit = q.limit;
    const sql = `SELECT event_time_ms AS eventTimeMs, stream_seq AS streamSeq, json FROM audit_events
      ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY event_time_ms DESC, stream_seq DESC LIMIT @limit`;
    return this.#db.prepare(sql).all(params) as IndexedEvent[];
  }

  /** Number of indexed events. */
  count(): number {
    return (this.#db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
