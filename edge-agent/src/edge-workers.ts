import type { Worker } from "node:cluster";
import type { JournalAppendOptions, JournalRecordType } from "./audit-journal.js";
import type { AuditAppender } from "./audit-recorder.js";
import type { EdgeConnectionConfig } from "./edge-config.js";
import {
  type ResolvedUpstream,
  type UpstreamCredentialResolver,
  UpstreamCredentialsError,
} from "./upstream-credentials.js";

/**
 * Edge worker processes (`TOLLGATE_EDGE_WORKERS`, default cores − 1; 1 = a single process): every worker serves
 * requests (SigV4, classification, re-signing, forwarding, event encoding) on the shared
 * listening port; the primary process owns the one audit journal, the shipper, the hash chain
 * and the checkpoint key. So the edge keeps a single chain under its own name, exactly as with
 * one process, and nothing changes for the control plane or `audit verify`.
 *
 * A worker's {@link WorkerJournalClient} sends its appends to the primary over the cluster IPC
 * channel, batched per event-loop turn; the primary appends them (one group commit) and answers
 * each batch once every record in it is fsynced (or failed). A call is forwarded only after that
 * answer, so "durable before forwarding" holds across processes. The answer carries the
 * journal's health, which the worker reports to the access decision.
 *
 * Fail-stop: if the primary goes away a worker exits at once (it cannot journal), and if a
 * worker dies the primary stops the whole edge; the journal's Start record then turns every
 * unmatched intent into an "interrupted" event on the next start, as for a single process.
 */

/** Worker → primary: records to append. */
interface AppendMessage {
  tollgate: "journal-append";
  records: Array<{ id: number; type: JournalRecordType; payload: Uint8Array; options?: JournalAppendOptions }>;
}

/** Primary → worker: outcome of appended records, and the journal's health. */
interface ResultMessage {
  tollgate: "journal-result";
  results: Array<{ id: number; offset?: number; error?: string }>;
  healthy: boolean;
}

/** Primary → worker: the journal's health (sent periodically). */
interface HealthMessage {
  tollgate: "journal-health";
  healthy: boolean;
}

function isAppend(m: unknown): m is AppendMessage {
  return typeof m === "object" && m !== null && (m as { tollgate?: unknown }).tollgate === "journal-append";
}

/** Primary side: serves one worker's appends from `appender` (the primary's journal). */
export function serveWorkerJournal(worker: Worker, appender: AuditAppender): () => void {
  const onMessage = (m: unknown): void => {
    if (!isAppend(m)) return;
    void Promise.all(
      m.records.map((r) =>
        appender
          .append(r.type, Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength), r.options)
          .then(
            (offset) => ({ id: r.id, offset }),
            (err: unknown) => ({ id: r.id, error: err instanceof Error ? err.message : String(err) }),
          ),
      ),
    ).then((results) => {
      const reply: ResultMessage = { tollgate: "journal-result", results, healthy: appender.healthy };
      if (worker.isConnected()) worker.send(reply);
    });
  };
  worker.on("message", onMessage);
  const timer = setInterval(() => {
    const health: HealthMessage = { tollgate: "journal-health", healthy: appender.healthy };
    if (worker.isConnected()) worker.send(health);
  }, 500);
  timer.unref();
  return () => {
    clearInterval(timer);
    worker.off("message", onMessage);
  };
}

/** Worker side: an {@link AuditAppender} backed by the primary's journal; see the module comment. */
export class WorkerJournalClient implements AuditAppender {
  readonly #proc: NodeJS.Process;
  readonly #onLost: () => void;
  #healthy = true;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (offset: number) => void; reject: (err: Error) => void }>();
  #batch: AppendMessage["records"] = [];
  #scheduled = false;

  /** `onLost` is called when the primary is gone (the worker should exit). */
  constructor(proc: NodeJS.Process, onLost: () => void) {
    this.#proc = proc;
    this.#onLost = onLost;
    proc.on("message", (m: unknown) => this.#onMessage(m));
    proc.on("disconnect", () => this.#lost());
  }

  get healthy(): boolean {
    return this.#healthy && this.#proc.connected === true;
  }

  append(type: JournalRecordType, payload: Uint8Array, options?: JournalAppendOptions): Promise<number> {
    if (this.#proc.connected !== true) {
      this.#lost();
      return Promise.reject(new Error("the edge's primary process is gone"));
    }
    const id = this.#nextId++;
    this.#batch.push({ id, type, payload, ...(options !== undefined ? { options } : {}) });
    if (!this.#scheduled) {
      this.#scheduled = true;
      // One IPC message for every append of this event-loop turn.
      setImmediate(() => this.#flush());
    }
    return new Promise((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
  }

  #flush(): void {
    this.#scheduled = false;
    const records = this.#batch;
    this.#batch = [];
    if (records.length === 0) return;
    const send = this.#proc.send?.bind(this.#proc);
    if (send === undefined || this.#proc.connected !== true) {
      this.#lost();
      return;
    }
    const m: AppendMessage = { tollgate: "journal-append", records };
    send(m, undefined, undefined, (err: Error | null) => {
      if (err !== null) this.#lost();
    });
  }

  #onMessage(m: unknown): void {
    if (typeof m !== "object" || m === null) return;
    const msg = m as ResultMessage | HealthMessage;
    if (msg.tollgate === "journal-health") {
      this.#healthy = msg.healthy;
      return;
    }
    if (msg.tollgate !== "journal-result") return;
    this.#healthy = msg.healthy;
    for (const r of msg.results) {
      const w = this.#waiting.get(r.id);
      if (w === undefined) continue;
      this.#waiting.delete(r.id);
      if (r.offset !== undefined) w.resolve(r.offset);
      else w.reject(new Error(r.error ?? "journal append failed"));
    }
  }

  #lost(): void {
    this.#healthy = false;
    // Normally exits the process: no call is answered without its journal.
    this.#onLost();
    const err = new Error("the edge's primary process is gone");
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}

/** Worker → primary: resolve a role-assuming connection's credentials. */
interface ResolveMessage {
  tollgate: "upstream-resolve";
  id: number;
  connection: EdgeConnectionConfig;
  principal: string;
}

/** Primary → worker: the resolved credentials, or why not. */
interface ResolvedMessage {
  tollgate: "upstream-resolved";
  id: number;
  resolved?: ResolvedUpstream;
  error?: string;
}

/** What the edge needs to sign forwarded calls with (see upstream-credentials.ts). */
export type UpstreamResolver = Pick<UpstreamCredentialResolver, "resolve">;

/**
 * Primary side: resolves workers' role-assuming connections with the primary's resolver, so
 * the edge keeps one AssumeRole session cache (one AssumeRole per connection and principal, not
 * one per worker).
 */
export function serveWorkerUpstream(worker: Worker, resolver: UpstreamResolver): () => void {
  const onMessage = (m: unknown): void => {
    if (typeof m !== "object" || m === null || (m as ResolveMessage).tollgate !== "upstream-resolve") return;
    const req = m as ResolveMessage;
    void resolver
      .resolve(req.connection, req.principal)
      .then(
        (resolved) => ({ tollgate: "upstream-resolved" as const, id: req.id, resolved }),
        (err: unknown) => ({
          tollgate: "upstream-resolved" as const,
          id: req.id,
          error: err instanceof Error ? err.message : String(err),
        }),
      )
      .then((reply: ResolvedMessage) => {
        if (worker.isConnected()) worker.send(reply);
      });
  };
  worker.on("message", onMessage);
  return () => worker.off("message", onMessage);
}

/**
 * Worker side: static and edge credentials resolve here; role-assuming connections are resolved
 * by the primary (one shared session cache).
 */
export class WorkerUpstreamResolver implements UpstreamResolver {
  readonly #local: UpstreamResolver;
  readonly #proc: NodeJS.Process;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (r: ResolvedUpstream) => void; reject: (e: Error) => void }>();

  constructor(proc: NodeJS.Process, local: UpstreamResolver) {
    this.#proc = proc;
    this.#local = local;
    proc.on("message", (m: unknown) => {
      if (typeof m !== "object" || m === null || (m as ResolvedMessage).tollgate !== "upstream-resolved") return;
      const msg = m as ResolvedMessage;
      const w = this.#waiting.get(msg.id);
      if (w === undefined) return;
      this.#waiting.delete(msg.id);
      if (msg.resolved !== undefined) w.resolve(msg.resolved);
      else w.reject(new UpstreamCredentialsError(msg.error ?? "upstream credentials unavailable"));
    });
  }

  resolve(connection: EdgeConnectionConfig, principal: string): Promise<ResolvedUpstream> {
    if (connection.roleArn === "") return this.#local.resolve(connection, principal);
    if (this.#proc.connected !== true || this.#proc.send === undefined) {
      return Promise.reject(new UpstreamCredentialsError("the edge's primary process is gone"));
    }
    const id = this.#nextId++;
    const m: ResolveMessage = { tollgate: "upstream-resolve", id, connection, principal };
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#proc.send?.(m);
    });
  }
}
