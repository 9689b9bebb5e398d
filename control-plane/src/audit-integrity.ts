import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type AuditEvent, type Checkpoint, type IntegrityAlert, IntegrityAlertSchema } from "@tollgate/proto";
import { auditEventFromJson, type ChainProblem, ChainVerifier, computeEventHash } from "@tollgate/sdk";
import type { AuditIndex } from "./audit-index.js";
import type { EdgeKeyRegistry } from "./edge-key-registry.js";
import type { Logger } from "./logger.js";

/** Options for {@link AuditIntegrity}. */
export interface AuditIntegrityOptions {
  /** Called with every alert raised, after it is stored (the control plane publishes it on NATS). */
  onAlert?: (alert: IntegrityAlert) => void;
  /** Hashes remembered per edge to match checkpoints against. Default 100000. */
  recentWindow?: number;
  /**
   * An edge that has published checkpoints and then publishes none for longer than this is
   * alerted as `silent` (and as `resumed` when its checkpoints come back), ms. Edges checkpoint
   * every 5 s, also when idle. 0 turns the watch off. Default 30000.
   */
  silenceAlertMs?: number;
}

/** What {@link AuditIntegrity.checkSilence} knows of an edge's checkpoints. */
interface Heard {
  /** Wall time (this process) the last checkpoint was ingested. */
  lastMs: number;
  sequence: bigint;
  /** A `silent` alert is out and no checkpoint has come since. */
  silent: boolean;
}

/** An edge that stopped (`silent`) or started again (`resumed`) publishing checkpoints. */
interface SilenceProblem {
  kind: "silent" | "resumed";
  edge: string;
  sequence: bigint;
  eventId?: string;
  detail: string;
}

/** Sequences remembered per edge as rejected, to suppress the gap they leave behind. */
const MAX_REJECTED = 1024;

interface EdgeState {
  verifier: ChainVerifier;
  /** Sequences of events already alerted and not accepted into the chain. */
  rejected: Map<bigint, string>;
  /** eventID by sequence for recent events (to name the other side of a fork). */
  eventIds: Map<bigint, string>;
}

/**
 * Verifies each edge's hash chain and signed checkpoints as the audit stream is ingested, in
 * stream order, with one {@link ChainVerifier} per edge. Every problem becomes an
 * {@link IntegrityAlert} stored in the index and handed to `onAlert`; chain heads are stored in
 * the index in the same transaction as the event, so a restarted control plane resumes where it
 * stopped without false alarms.
 *
 * Events without a chain (`tollgate.sequence` 0, `hash` "") from an edge that has never sent a
 * chained event are "unchained": indexed and counted, with one warning per edge, not an alert
 * per event. Once an edge has chained, an unchained event from it is an alert (`bad-hash`).
 *
 * Silence: edges checkpoint every 5 s, also when idle. {@link checkSilence} (run on a timer by the
 * control plane) alerts `silent` when an edge whose checkpoints it has ingested sends none for
 * longer than `silenceAlertMs`, and the next checkpoint from it raises `resumed`.
 */
export class AuditIntegrity {
  readonly #index: AuditIndex;
  readonly #keys: EdgeKeyRegistry;
  readonly #logger: Logger;
  readonly #options: AuditIntegrityOptions;
  readonly #edges = new Map<string, EdgeState>();
  readonly #pems = new Map<string, string>();
  readonly #warnedUnchained = new Set<string>();
  readonly #heard = new Map<string, Heard>();
  #unchained = 0;
  #alertCount = 0;
  #processedSeq: number;

  constructor(index: AuditIndex, keys: EdgeKeyRegistry, logger: Logger, options: AuditIntegrityOptions = {}) {
    this.#index = index;
    this.#keys = keys;
    this.#logger = logger;
    this.#options = options;
    this.#processedSeq = index.integrityStreamSeq();
    // Resume: seed each edge's verifier with its last verified event, as stored in the index.
    for (const head of index.chainHeads()) {
      const stored = index.eventById(head.eventId);
      if (stored === undefined) continue;
      this.#anchor(head.edge, auditEventFromJson(stored.json));
    }
  }

  /** Unchained events seen since start. */
  get unchainedEvents(): number {
    return this.#unchained;
  }

  /** Alerts raised since start. */
  get alertsRaised(): number {
    return this.#alertCount;
  }

  #state(edge: string): EdgeState {
    let s = this.#edges.get(edge);
    if (s === undefined) {
      s = {
        verifier: new ChainVerifier((e, keyId) => this.#pems.get(`${e}\n${keyId}`), this.#options.recentWindow),
        rejected: new Map(),
        eventIds: new Map(),
      };
      this.#edges.set(edge, s);
    }
    return s;
  }

  /** Starts a fresh verifier for `edge` whose head is `event` (trusted: already verified or re-synced). */
  #anchor(edge: string, event: AuditEvent): void {
    const s = this.#state(edge);
    s.verifier = new ChainVerifier((e, keyId) => this.#pems.get(`${e}\n${keyId}`), this.#options.recentWindow);
    // The first event of a verifier that is not sequence 1 reports a gap; that is the anchor.
    s.verifier.addEvent(event);
    this.#remember(s, event);
  }

  #remember(s: EdgeState, event: AuditEvent): void {
    const seq = event.tollgate?.sequence ?? 0n;
    s.eventIds.set(seq, event.eventId);
    if (s.eventIds.size > MAX_REJECTED) {
      const first = s.eventIds.keys().next().value;
      if (first !== undefined) s.eventIds.delete(first);
    }
  }

  /** True when the message at `streamSeq` was already verified (redelivery after a restart). */
  seen(streamSeq: number): boolean {
    return streamSeq <= this.#processedSeq;
  }

  /**
   * Verifies one event; call inside the index transaction that stores it, before the insert.
   * Returns the alerts raised (already stored).
   */
  checkEvent(event: AuditEvent, streamSeq: number): IntegrityAlert[] {
    if (this.seen(streamSeq)) return [];
    const t = event.tollgate;
    const edge = t?.edge ?? "";
    const alerts: IntegrityAlert[] = [];
    if (t === undefined || (t.hash === "" && t.sequence === 0n)) {
      if (this.#edges.get(edge)?.verifier.head(edge) !== undefined) {
        alerts.push(
          this.#alert(
            this.#problem("bad-hash", event, "unchained event from an edge that chains its events"),
            streamSeq,
          ),
        );
      } else {
        this.#unchained++;
        if (!this.#warnedUnchained.has(edge)) {
          this.#warnedUnchained.add(edge);
          this.#logger.warn(
            { event: "audit_unchained", edge },
            "edge publishes unchained audit events (no tamper evidence until it chains them)",
          );
        }
      }
      this.#markProcessed(streamSeq);
      return alerts;
    }
    const s = this.#state(edge);
    // A re-published copy of an event already verified (same id, same valid hash) is not news.
    const stored = this.#index.eventById(event.eventId);
    if (stored !== undefined && stored.chainHash === t.hash && computeEventHash(event) === t.hash) {
      this.#markProcessed(streamSeq);
      return [];
    }
    const before = s.verifier.head(edge);
    // The first event of an edge must be sequence 1, else its predecessors are missing (a stream
    // trimmed by max age reports that once per edge on replay).
    let problems = s.verifier.addEvent(event);
    problems = problems.filter((p) => {
      if (p.kind !== "gap" || before === undefined) return true;
      // A gap made only of events already alerted (altered, forged) is not a second problem.
      for (let q = before.sequence + 1n; q < t.sequence; q++) if (!s.rejected.has(q)) return true;
      return false;
    });
    const after = s.verifier.head(edge);
    const accepted = after !== undefined && after.sequence === t.sequence && after.hash === t.hash;
    for (const p of problems) {
      if (p.kind === "fork") {
        const other = s.eventIds.get(p.sequence);
        if (other !== undefined && other !== event.eventId) p.detail += ` (conflicts with event ${other})`;
      }
      alerts.push(this.#alert(p, streamSeq));
    }
    if (accepted) {
      this.#remember(s, event);
      this.#index.setChainHead({ edge, sequence: t.sequence, hash: t.hash, eventId: event.eventId });
    } else if (problems.some((p) => p.kind === "fork") && computeEventHash(event) === t.hash) {
      // Two different events claim this place in the chain; follow the newer one so a single
      // forgery is one alert, not one per later event. Checkpoints tell which one the edge signed.
      this.#anchor(edge, event);
      this.#index.setChainHead({ edge, sequence: t.sequence, hash: t.hash, eventId: event.eventId });
    } else if (problems.length > 0) {
      s.rejected.set(t.sequence, event.eventId);
      if (s.rejected.size > MAX_REJECTED) {
        const first = s.rejected.keys().next().value;
        if (first !== undefined) s.rejected.delete(first);
      }
    }
    this.#markProcessed(streamSeq);
    return alerts;
  }

  /**
   * Looks up the signing key a checkpoint names (Redis), so {@link checkCheckpoint} can run
   * synchronously inside the index transaction.
   */
  async prepareCheckpoint(checkpoint: Checkpoint): Promise<void> {
    const k = `${checkpoint.edge}\n${checkpoint.keyId}`;
    if (this.#pems.has(k)) return;
    const record = await this.#keys.get(checkpoint.edge, checkpoint.keyId);
    if (record !== undefined) this.#pems.set(k, record.publicKeyPem);
  }

  /** Verifies a checkpoint (after {@link prepareCheckpoint}); returns the alerts raised. */
  checkCheckpoint(checkpoint: Checkpoint, streamSeq: number): IntegrityAlert[] {
    if (this.seen(streamSeq)) return [];
    const problems = this.#state(checkpoint.edge).verifier.addCheckpoint(checkpoint);
    const alerts = problems.map((p) => this.#alert(p, streamSeq));
    const heard = this.#heard.get(checkpoint.edge);
    const nowMs = Date.now();
    if (heard?.silent === true) {
      alerts.push(
        this.#alert(
          {
            kind: "resumed",
            edge: checkpoint.edge,
            sequence: checkpoint.sequence,
            detail: `checkpoints resumed after ${Math.round((nowMs - heard.lastMs) / 1000)} s of silence (last before at sequence ${heard.sequence})`,
          },
          streamSeq,
        ),
      );
    }
    this.#heard.set(checkpoint.edge, { lastMs: nowMs, sequence: checkpoint.sequence, silent: false });
    this.#markProcessed(streamSeq);
    return alerts;
  }

  /**
   * Raises a `silent` alert (stored; hand the result to {@link emit}) for each edge that has
   * published checkpoints but none for longer than `silenceAlertMs`; once per silence. Call it
   * periodically. Edges are watched from their first checkpoint ingested by this process.
   */
  checkSilence(nowMs = Date.now()): IntegrityAlert[] {
    const windowMs = this.#options.silenceAlertMs ?? 30_000;
    if (windowMs <= 0) return [];
    const alerts: IntegrityAlert[] = [];
    for (const [edge, heard] of this.#heard) {
      if (heard.silent || nowMs - heard.lastMs <= windowMs) continue;
      heard.silent = true;
      alerts.push(
        this.#alert(
          {
            kind: "silent",
            edge,
            sequence: heard.sequence,
            detail: `no checkpoint for ${Math.round((nowMs - heard.lastMs) / 1000)} s (edges checkpoint every 5 s, also when idle); last at sequence ${heard.sequence}, ${new Date(heard.lastMs).toISOString()}`,
          },
          0,
        ),
      );
    }
    return alerts;
  }

  /** Marks a message that is neither event nor checkpoint as processed. */
  markProcessed(streamSeq: number): void {
    this.#markProcessed(streamSeq);
  }

  #markProcessed(streamSeq: number): void {
    if (streamSeq <= this.#processedSeq) return;
    this.#processedSeq = streamSeq;
    this.#index.setIntegrityStreamSeq(streamSeq);
  }

  #problem(kind: ChainProblem["kind"], event: AuditEvent, detail: string): ChainProblem {
    return {
      kind,
      edge: event.tollgate?.edge ?? "",
      sequence: event.tollgate?.sequence ?? 0n,
      eventId: event.eventId,
      detail,
    };
  }

  #alert(p: ChainProblem | SilenceProblem, streamSeq: number): IntegrityAlert {
    const timeMs = Date.now();
    const alert = create(IntegrityAlertSchema, {
      alertId: randomUUID(),
      time: new Date(timeMs).toISOString(),
      edge: p.edge,
      kind: p.kind,
      sequence: p.sequence,
      eventId: p.eventId ?? "",
      detail: p.detail,
      streamSequence: BigInt(streamSeq),
    });
    this.#index.insertAlert({
      alertId: alert.alertId,
      timeMs,
      edge: alert.edge,
      kind: alert.kind,
      sequence: alert.sequence,
      eventId: alert.eventId,
      detail: alert.detail,
      streamSeq,
    });
    this.#alertCount++;
    this.#logger.warn(
      { event: "audit_integrity_alert", edge: p.edge, kind: p.kind, sequence: String(p.sequence), eventId: p.eventId },
      `audit integrity: ${p.kind}: ${p.detail}`,
    );
    return alert;
  }

  /** Forwards alerts to `onAlert` (call after the transaction that stored them committed). */
  emit(alerts: readonly IntegrityAlert[]): void {
    for (const a of alerts) this.#options.onAlert?.(a);
  }
}
