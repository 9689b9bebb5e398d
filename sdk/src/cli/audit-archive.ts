import { createReadStream, createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { createGunzip, createGzip, type Gzip } from "node:zlib";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import { type AuditEvent, type Checkpoint, CheckpointSchema } from "@tollgate/proto";
import { type ChainProblem, ChainVerifier, verifyCheckpoint } from "../audit-chain.js";
import { auditEventFromJson, auditEventToJson } from "../audit-json.js";
import { renderOcsfApiActivity } from "../ocsf-api-activity.js";
import { CliError } from "./cli-error.js";

/** A registered edge public key, as exported next to the events. */
export interface ArchivedEdgeKey {
  edgeName: string;
  keyId: string;
  publicKeyPem: string;
}

/** Export file formats. */
export const EXPORT_FORMATS = ["cloudtrail", "ocsf", "jsonl"] as const;
/** One of {@link EXPORT_FORMATS}. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const SUFFIX: Record<ExportFormat, string> = {
  cloudtrail: ".cloudtrail.json.gz",
  ocsf: ".ocsf.jsonl.gz",
  jsonl: ".jsonl.gz",
};
const SIDECAR_SUFFIX = ".checkpoints.json.gz";

/** The sidecar written beside each export: checkpoints and the keys that verify them. */
export interface ExportSidecar {
  version: 1;
  format: ExportFormat;
  /** Data file name (same directory). */
  file: string;
  /** Inclusive, RFC 3339. */
  since: string;
  /** Exclusive, RFC 3339. */
  until: string;
  records: number;
  edgeKeys: ArchivedEdgeKey[];
  /** Checkpoint JSON objects (proto3 JSON of tollgate.audit.v1.Checkpoint). */
  checkpoints: unknown[];
}

/** Finds the sidecar of an export data file. */
export function sidecarPath(dataFile: string): { path: string; format: ExportFormat } {
  const name = basename(dataFile);
  for (const format of EXPORT_FORMATS) {
    const suffix = SUFFIX[format];
    if (name.endsWith(suffix)) {
      return { path: join(dirname(dataFile), `${name.slice(0, -suffix.length)}${SIDECAR_SUFFIX}`), format };
    }
  }
  throw new CliError(
    `${dataFile}: not a tollgate export (expected a name ending in ${Object.values(SUFFIX).join(", ")})`,
  );
}

/** Options of {@link readAuditStream}. */
export interface ReadAuditStreamOptions {
  stream: string;
  subjectPrefix: string;
  /** Start at this time (JetStream receive time); default: the start of the stream. */
  sinceMs?: number | undefined;
  /** How long to wait for a batch before concluding the stream has no more messages. */
  idleMs?: number;
}

/**
 * Reads the audit stream from the start (or `sinceMs`) to its current end with an ordered
 * consumer, handing events and checkpoints to the callbacks in stream order. Other subjects are
 * skipped.
 */
export async function readAuditStream(
  js: JetStreamClient,
  options: ReadAuditStreamOptions,
  on: {
    event: (event: AuditEvent, json: string) => void | Promise<void>;
    checkpoint: (checkpoint: Checkpoint) => void | Promise<void>;
  },
): Promise<void> {
  const info = await (await js.streams.get(options.stream)).info();
  const lastSeq = info.state.last_seq;
  if (info.state.messages === 0) return;
  const config =
    options.sinceMs === undefined
      ? { deliver_policy: DeliverPolicy.All }
      : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(options.sinceMs).toISOString() };
  const eventPrefix = `${options.subjectPrefix}.audit.`;
  const checkpointPrefix = `${options.subjectPrefix}.checkpoint.`;
  const handle = async (subject: string, json: string): Promise<void> => {
    if (subject.startsWith(eventPrefix)) await on.event(auditEventFromJson(json), json);
    else if (subject.startsWith(checkpointPrefix)) {
      await on.checkpoint(fromJsonString(CheckpointSchema, json, { ignoreUnknownFields: true }));
    }
  };
  let consumer: Awaited<ReturnType<JetStreamClient["consumers"]["get"]>>;
  try {
    consumer = await js.consumers.get(options.stream, config);
  } catch (err) {
    if (!(err instanceof Error && err.name === "TimeoutError")) throw err;
    // In a JetStream cluster that has just lost a node, the (R1) ordered consumer may be placed
    // on the dead peer and its creation times out. Read message by message from the stream
    // leader instead (slower, but needs no consumer).
    const jsm = await js.jetstreamManager();
    for (let seq = info.state.first_seq; seq <= lastSeq; seq++) {
      const m = await jsm.streams.getMessage(options.stream, { seq });
      if (m === null) continue;
      if (options.sinceMs !== undefined && m.time.getTime() < options.sinceMs) continue;
      await handle(m.subject, m.string());
    }
    return;
  }
  const messages = await consumer.consume({ max_messages: 1000 });
  // With a start time past the last message nothing arrives: stop after idleMs of silence.
  const idleMs = options.idleMs ?? 2000;
  let timer = setTimeout(() => void messages.stop(), idleMs);
  try {
    for await (const m of messages) {
      clearTimeout(timer);
      await handle(m.subject, m.string());
      if (m.seq >= lastSeq || m.info.pending === 0) break;
      timer = setTimeout(() => void messages.stop(), idleMs);
    }
  } finally {
    clearTimeout(timer);
    await messages.close();
  }
}

/** A problem found by {@link AuditVerifier}, naming the event or checkpoint. */
export type VerifyProblem = ChainProblem;

/** Per-edge summary of a verification. */
export interface EdgeSummary {
  edge: string;
  events: number;
  unchained: number;
  head: bigint;
  lastCheckpoint: bigint;
}

/**
 * Offline re-verification of audit events and checkpoints, in the order given, one
 * {@link ChainVerifier} per edge. With `anchored` (a time window or an exported file), an edge's
 * first event may sit mid-chain and checkpoints before it only have their signature checked.
 */
export class AuditVerifier {
  readonly problems: VerifyProblem[] = [];
  readonly #keys: Map<string, string>;
  readonly #edgesWithKeys: Set<string>;
  readonly #anchored: boolean;
  readonly #verifiers = new Map<string, ChainVerifier>();
  readonly #summary = new Map<string, EdgeSummary>();
  events = 0;
  checkpoints = 0;

  constructor(keys: readonly ArchivedEdgeKey[], options: { anchored: boolean }) {
    this.#keys = new Map(keys.map((k) => [`${k.edgeName}\n${k.keyId}`, k.publicKeyPem]));
    this.#edgesWithKeys = new Set(keys.map((k) => k.edgeName));
    this.#anchored = options.anchored;
  }

  #edge(edge: string): { verifier: ChainVerifier; summary: EdgeSummary } {
    let verifier = this.#verifiers.get(edge);
    if (verifier === undefined) {
      verifier = new ChainVerifier((e, keyId) => this.#keys.get(`${e}\n${keyId}`), Number.MAX_SAFE_INTEGER);
      this.#verifiers.set(edge, verifier);
    }
    let summary = this.#summary.get(edge);
    if (summary === undefined) {
      summary = { edge, events: 0, unchained: 0, head: 0n, lastCheckpoint: 0n };
      this.#summary.set(edge, summary);
    }
    return { verifier, summary };
  }

  /** Per-edge summaries, sorted by edge. */
  summaries(): EdgeSummary[] {
    return [...this.#summary.values()].sort((a, b) => a.edge.localeCompare(b.edge));
  }

  addEvent(event: AuditEvent): void {
    this.events++;
    const t = event.tollgate;
    const edgeName = t?.edge ?? "";
    const { verifier, summary } = this.#edge(edgeName);
    summary.events++;
    if (t === undefined || (t.hash === "" && t.sequence === 0n)) {
      summary.unchained++;
      // Unchained events are expected from edges that do not chain yet; not from one with a key.
      if (this.#edgesWithKeys.has(edgeName) || verifier.head(edgeName) !== undefined) {
        this.problems.push({
          kind: "bad-hash",
          edge: edgeName,
          sequence: 0n,
          eventId: event.eventId,
          detail: "unchained event from an edge that chains its events",
        });
      }
      return;
    }
    const first = verifier.head(edgeName) === undefined;
    let problems = verifier.addEvent(event);
    if (first && this.#anchored) problems = problems.filter((p) => p.kind !== "gap");
    this.problems.push(...problems);
    const head = verifier.head(edgeName);
    if (head !== undefined) summary.head = head.sequence;
  }

  addCheckpoint(checkpoint: Checkpoint): void {
    this.checkpoints++;
    const { verifier, summary } = this.#edge(checkpoint.edge);
    if (verifier.head(checkpoint.edge) === undefined && this.#anchored) {
      // Before the window's first event of this edge: only the signature can be checked.
      const pem = this.#keys.get(`${checkpoint.edge}\n${checkpoint.keyId}`);
      if (pem === undefined || !verifyCheckpoint(checkpoint, pem)) {
        this.problems.push({
          kind: "bad-checkpoint",
          edge: checkpoint.edge,
          sequence: checkpoint.sequence,
          detail: "signature does not verify with a registered edge key",
        });
      }
      return;
    }
    const problems = verifier.addCheckpoint(checkpoint);
    this.problems.push(...problems);
    if (problems.length === 0 && checkpoint.sequence > summary.lastCheckpoint)
      summary.lastCheckpoint = checkpoint.sequence;
  }
}

async function writeGz(gz: Gzip, text: string): Promise<void> {
  if (!gz.write(text)) await new Promise<void>((resolve) => gz.once("drain", () => resolve()));
}

/** Options of {@link exportAuditEvents}. */
export interface ExportOptions {
  format: ExportFormat;
  outDir: string;
  sinceMs: number;
  untilMs: number;
  /** Checkpoints made up to this long after `untilMs` are kept, so the window's tail is covered. */
  checkpointGraceMs?: number;
}

/** What {@link exportAuditEvents} wrote. */
export interface ExportResult {
  file: string;
  sidecar: string;
  records: number;
  checkpoints: number;
}

function stamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

/**
 * Writes events with `since <= eventTime < until` from `source` to a gzip file in the chosen
 * format, and a gzip JSON sidecar with the window's checkpoints and the edges' public keys.
 */
export async function exportAuditEvents(
  source: (on: {
    event: (event: AuditEvent) => Promise<void>;
    checkpoint: (checkpoint: Checkpoint) => void;
  }) => Promise<void>,
  keys: readonly ArchivedEdgeKey[],
  options: ExportOptions,
): Promise<ExportResult> {
  await mkdir(options.outDir, { recursive: true, mode: 0o700 });
  const base = `tollgate-audit-${stamp(options.sinceMs)}-${stamp(options.untilMs)}`;
  const file = join(options.outDir, `${base}${SUFFIX[options.format]}`);
  const sidecar = join(options.outDir, `${base}${SIDECAR_SUFFIX}`);
  const gz = createGzip();
  const out = createWriteStream(file, { mode: 0o600 });
  const written = new Promise<void>((resolve, reject) => {
    out.once("finish", () => resolve());
    out.once("error", reject);
    gz.once("error", reject);
  });
  gz.pipe(out);
  let records = 0;
  const checkpoints: unknown[] = [];
  const graceMs = options.checkpointGraceMs ?? 30_000;
  if (options.format === "cloudtrail") await writeGz(gz, '{"Records":[');
  await source({
    event: async (event) => {
      const t = Date.parse(event.eventTime);
      if (!(t >= options.sinceMs && t < options.untilMs)) return;
      let line: string;
      if (options.format === "ocsf") line = `${JSON.stringify(renderOcsfApiActivity(event))}\n`;
      else if (options.format === "jsonl") line = `${auditEventToJson(event)}\n`;
      else line = `${records === 0 ? "" : ","}\n${auditEventToJson(event)}`;
      records++;
      await writeGz(gz, line);
    },
    checkpoint: (checkpoint) => {
      const t = Date.parse(checkpoint.time);
      if (t >= options.sinceMs && t < options.untilMs + graceMs) {
        checkpoints.push(JSON.parse(toJsonString(CheckpointSchema, checkpoint, { alwaysEmitImplicit: true })));
      }
    },
  });
  if (options.format === "cloudtrail") await writeGz(gz, "\n]}\n");
  gz.end();
  await written;
  const meta: ExportSidecar = {
    version: 1,
    format: options.format,
    file: basename(file),
    since: new Date(options.sinceMs).toISOString(),
    until: new Date(options.untilMs).toISOString(),
    records,
    edgeKeys: keys.map((k) => ({ edgeName: k.edgeName, keyId: k.keyId, publicKeyPem: k.publicKeyPem })),
    checkpoints,
  };
  const side = createGzip();
  const sideOut = createWriteStream(sidecar, { mode: 0o600 });
  const sideWritten = new Promise<void>((resolve, reject) => {
    sideOut.once("finish", () => resolve());
    sideOut.once("error", reject);
    side.once("error", reject);
  });
  side.pipe(sideOut);
  side.end(`${JSON.stringify(meta, null, 2)}\n`);
  await sideWritten;
  return { file, sidecar, records, checkpoints: checkpoints.length };
}

/** Reads and gunzips a whole file as UTF-8. */
export async function readGzipText(path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(path).pipe(createGunzip())) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Parses an export data file back into audit events (cloudtrail and jsonl formats). */
export async function readExportedEvents(path: string, format: ExportFormat): Promise<AuditEvent[]> {
  const text = await readGzipText(path);
  if (format === "cloudtrail") {
    const doc = JSON.parse(text) as { Records?: unknown[] };
    if (!Array.isArray(doc.Records)) throw new CliError(`${path}: no Records array`);
    return doc.Records.map((r) => auditEventFromJson(JSON.stringify(r)));
  }
  if (format === "jsonl") {
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => auditEventFromJson(l));
  }
  throw new CliError(
    `${path}: OCSF exports do not keep the whole event, so its hash cannot be recomputed; verify the cloudtrail or jsonl export of the same window`,
  );
}

/** Reads an export's sidecar. */
export async function readSidecar(path: string): Promise<ExportSidecar> {
  const meta = JSON.parse(await readGzipText(path)) as ExportSidecar;
  if (meta.version !== 1 || !Array.isArray(meta.checkpoints) || !Array.isArray(meta.edgeKeys)) {
    throw new CliError(`${path}: not a tollgate export sidecar`);
  }
  return meta;
}

/** Parses the checkpoints of a sidecar. */
export function sidecarCheckpoints(meta: ExportSidecar): Checkpoint[] {
  return meta.checkpoints.map((c) =>
    fromJsonString(CheckpointSchema, JSON.stringify(c), { ignoreUnknownFields: true }),
  );
}
