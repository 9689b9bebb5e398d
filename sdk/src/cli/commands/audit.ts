import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type AuditEvent, type AuditFilter, AuditFilterSchema, Decision, IntegrityAlertSchema } from "@tollgate/proto";
import { type Command, Option } from "commander";
import { auditEventToJson } from "../../audit-json.js";
import type { ControlPlaneClient } from "../../control-plane-client.js";
import {
  type ArchivedEdgeKey,
  AuditVerifier,
  EXPORT_FORMATS,
  type ExportFormat,
  exportAuditEvents,
  readAuditStream,
  readExportedEvents,
  readSidecar,
  sidecarCheckpoints,
  sidecarPath,
  type VerifyProblem,
} from "../audit-archive.js";
import { CliError } from "../cli-error.js";
import { parseTimeMs } from "../duration.js";
import { formatEventLine, formatEventTable } from "../format.js";
import type { CliIo } from "../io.js";

/** Filter flags shared by `audit query` and `audit tail`. */
export interface AuditFilterFlags {
  principal?: string | undefined;
  connection?: string | undefined;
  service?: string | undefined;
  operation?: string | undefined;
  /** Duration (`15m` = since 15 minutes ago) or ISO time. */
  since?: string | undefined;
  /** Duration or ISO time. */
  until?: string | undefined;
  /** Exact resource ARN. */
  resource?: string | undefined;
  /** `allow` or `deny`. */
  decision?: string | undefined;
  /** Exact error code. */
  errorCode?: string | undefined;
}

function parseDecision(value: string | undefined): Decision {
  if (value === undefined || value === "") return Decision.UNSPECIFIED;
  if (value === "allow") return Decision.ALLOW;
  if (value === "deny") return Decision.DENY;
  throw new CliError("--decision must be allow or deny");
}

/** Builds the AuditFilter for the flags; relative times are taken back from `nowMs`. */
export function buildAuditFilter(flags: AuditFilterFlags, nowMs: number): AuditFilter {
  return create(AuditFilterSchema, {
    principal: flags.principal ?? "",
    connection: flags.connection ?? "",
    service: flags.service ?? "",
    operation: flags.operation ?? "",
    resourceArn: flags.resource ?? "",
    decision: parseDecision(flags.decision),
    errorCode: flags.errorCode ?? "",
    ...(flags.since === undefined ? {} : { since: timestampFromMs(parseTimeMs(flags.since, nowMs, "--since")) }),
    ...(flags.until === undefined ? {} : { until: timestampFromMs(parseTimeMs(flags.until, nowMs, "--until")) }),
  });
}

/** Largest page the server returns. */
const MAX_PAGE_SIZE = 1000;

/** Options of `tollgate audit query`. */
export interface AuditQueryOptions {
  filter: AuditFilter;
  /** Maximum events to print. */
  limit: number;
  json: boolean;
}

/** Pages through QueryEvents until `limit` events or the last page. */
export async function auditQueryCommand(
  client: ControlPlaneClient,
  options: AuditQueryOptions,
  io: CliIo,
): Promise<void> {
  if (!Number.isInteger(options.limit) || options.limit < 1) throw new CliError("--limit must be a positive integer");
  const events: AuditEvent[] = [];
  let pageToken = "";
  do {
    const response = await client.audit.queryEvents({
      filter: options.filter,
      pageSize: Math.min(options.limit - events.length, MAX_PAGE_SIZE),
      pageToken,
    });
    for (const event of response.events) {
      if (events.length >= options.limit) break;
      events.push(event);
      if (options.json) io.out(`${auditEventToJson(event)}\n`);
    }
    pageToken = response.nextPageToken;
  } while (pageToken !== "" && events.length < options.limit);
  if (!options.json) {
    if (events.length === 0) io.err("tollgate: no matching events\n");
    else io.out(formatEventTable(events));
  }
}

/** Options of `tollgate audit tail`. */
export interface AuditTailOptions {
  filter: AuditFilter;
  json: boolean;
  /** Aborting ends the tail quietly. */
  signal: AbortSignal;
}

/** Streams TailEvents until `signal` aborts, one line per event. */
export async function auditTailCommand(
  client: ControlPlaneClient,
  options: AuditTailOptions,
  io: CliIo,
): Promise<void> {
  try {
    for await (const response of client.audit.tailEvents(
      { filter: options.filter },
      { timeoutMs: 0, signal: options.signal },
    )) {
      if (response.event === undefined) continue;
      io.out(`${options.json ? auditEventToJson(response.event) : formatEventLine(response.event)}\n`);
    }
  } catch (error) {
    if (options.signal.aborted && (!(error instanceof ConnectError) || error.code === Code.Canceled)) return;
    throw error;
  }
  if (!options.signal.aborted) throw new CliError("the control plane ended the audit tail");
}

/** The registered edge public keys, from the control plane. */
export async function fetchEdgeKeys(client: ControlPlaneClient): Promise<ArchivedEdgeKey[]> {
  const res = await client.edge.listEdges({});
  return res.keys.map((k) => ({ edgeName: k.edgeName, keyId: k.keyId, publicKeyPem: k.publicKeyPem }));
}

/** Where `audit verify` reads from. */
export type AuditVerifySource =
  | {
      kind: "stream";
      js: JetStreamClient;
      stream: string;
      subjectPrefix: string;
      /** Start here (JetStream receive time); the first event of each edge anchors its chain. */
      sinceMs?: number | undefined;
      keys: readonly ArchivedEdgeKey[];
    }
  | { kind: "file"; path: string };

function describeProblem(p: VerifyProblem): string {
  const at = p.eventId === undefined || p.eventId === "" ? "checkpoint" : `event ${p.eventId}`;
  return `${p.kind} at ${at} (edge ${p.edge}, sequence ${p.sequence}): ${p.detail}`;
}

/**
 * `tollgate audit verify`: re-verifies hash chains and checkpoint signatures, from the stream
 * or from an exported file and its sidecar. Prints a summary per edge; throws {@link CliError}
 * naming the first bad event when anything does not verify.
 */
export async function auditVerifyCommand(source: AuditVerifySource, io: CliIo): Promise<void> {
  let verifier: AuditVerifier;
  if (source.kind === "stream") {
    verifier = new AuditVerifier(source.keys, { anchored: source.sinceMs !== undefined });
    await readAuditStream(
      source.js,
      { stream: source.stream, subjectPrefix: source.subjectPrefix, sinceMs: source.sinceMs },
      { event: (e) => verifier.addEvent(e), checkpoint: (c) => verifier.addCheckpoint(c) },
    );
  } else {
    const { path: sidecar, format } = sidecarPath(source.path);
    const meta = await readSidecar(sidecar);
    const events = await readExportedEvents(source.path, format);
    verifier = new AuditVerifier(meta.edgeKeys, { anchored: true });
    if (events.length !== meta.records) {
      verifier.problems.push({
        kind: "gap",
        edge: "",
        sequence: 0n,
        detail: `file holds ${events.length} records, its sidecar says ${meta.records}`,
      });
    }
    for (const e of events) verifier.addEvent(e);
    // Checkpoints after all events: each is matched against the hash the chain had at its sequence.
    const checkpoints = sidecarCheckpoints(meta).sort((a, b) =>
      a.edge === b.edge ? Number(a.sequence - b.sequence) : a.edge.localeCompare(b.edge),
    );
    for (const c of checkpoints) verifier.addCheckpoint(c);
  }
  for (const s of verifier.summaries()) {
    const uncovered = s.head > s.lastCheckpoint ? ` (${s.head - s.lastCheckpoint} after the last checkpoint)` : "";
    const unchained = s.unchained > 0 ? `, ${s.unchained} unchained` : "";
    io.out(
      `edge ${s.edge === "" ? "(none)" : s.edge}: ${s.events} events${unchained}, head ${s.head}, checkpoint ${s.lastCheckpoint}${uncovered}\n`,
    );
  }
  const first = verifier.problems[0];
  if (first !== undefined) {
    for (const p of verifier.problems) io.out(`BAD ${describeProblem(p)}\n`);
    throw new CliError(`audit verify failed: ${verifier.problems.length} problem(s); first: ${describeProblem(first)}`);
  }
  io.out(`OK: ${verifier.events} events and ${verifier.checkpoints} checkpoints verified\n`);
}

/** Options of `tollgate audit export`. */
export interface AuditExportOptions {
  js: JetStreamClient;
  stream: string;
  subjectPrefix: string;
  keys: readonly ArchivedEdgeKey[];
  format: ExportFormat;
  outDir: string;
  sinceMs: number;
  untilMs: number;
}

/** Slack before `since` when reading the stream: events are stored shortly after their eventTime. */
const EXPORT_READ_SLACK_MS = 5 * 60_000;

/** `tollgate audit export`: writes the window's events (gzip) and a sidecar with checkpoints and keys. */
export async function auditExportCommand(options: AuditExportOptions, io: CliIo): Promise<void> {
  if (!(options.untilMs > options.sinceMs)) throw new CliError("--until must be later than --since");
  const result = await exportAuditEvents(
    (on) =>
      readAuditStream(
        options.js,
        {
          stream: options.stream,
          subjectPrefix: options.subjectPrefix,
          sinceMs: options.sinceMs - EXPORT_READ_SLACK_MS,
        },
        on,
      ),
    options.keys,
    { format: options.format, outDir: options.outDir, sinceMs: options.sinceMs, untilMs: options.untilMs },
  );
  io.out(`${result.file}\t${result.records} events\n${result.sidecar}\t${result.checkpoints} checkpoints\n`);
}

/** `tollgate audit alerts`: integrity alerts the control plane raised, newest first. */
export async function auditAlertsCommand(
  client: ControlPlaneClient,
  options: { edge?: string | undefined; sinceMs?: number | undefined; limit: number; json: boolean },
  io: CliIo,
): Promise<void> {
  const res = await client.audit.listAlerts({
    edge: options.edge ?? "",
    pageSize: options.limit,
    ...(options.sinceMs === undefined ? {} : { since: timestampFromMs(options.sinceMs) }),
  });
  if (res.alerts.length === 0 && !options.json) io.err("tollgate: no integrity alerts\n");
  for (const a of res.alerts) {
    io.out(
      options.json
        ? `${toJsonString(IntegrityAlertSchema, a, { alwaysEmitImplicit: true })}\n`
        : `${a.time}  ${a.kind}  edge ${a.edge}  sequence ${a.sequence}  ${a.eventId === "" ? "(checkpoint)" : `event ${a.eventId}`}  ${a.detail}\n`,
    );
  }
}

/** What {@link addAuditIntegrityCommands} needs from main.ts (which reads the environment). */
export interface AuditIntegrityCommandDeps {
  /** TOLLGATE_NATS_URL. */
  natsUrl: string;
  /** TOLLGATE_AUDIT_STREAM. */
  auditStream: string;
  /** TOLLGATE_AUDIT_SUBJECT_PREFIX. */
  auditSubjectPrefix: string;
  client: (opts: { api?: string }) => ControlPlaneClient;
  apiOption: () => Option;
  io: CliIo;
}

async function withJetStream<T>(natsUrl: string, fn: (js: JetStreamClient) => Promise<T>): Promise<T> {
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: natsUrl.split(",").map((s) => s.trim()), name: "tollgate-cli" });
  } catch (cause) {
    throw new CliError(`cannot reach NATS at ${natsUrl} (TOLLGATE_NATS_URL)`, { cause });
  }
  try {
    return await fn(jetstream(nc));
  } finally {
    await nc.close();
  }
}

/**
 * Registers `audit verify`, `audit export` and `audit alerts` under the `audit` command. Both read the
 * JetStream stream directly (TOLLGATE_NATS_URL), so what they check does not depend on the
 * control plane's index; the control plane only supplies the edges' public keys.
 */
export function addAuditIntegrityCommands(audit: Command, deps: AuditIntegrityCommandDeps): void {
  const streamOptions = (command: Command): Command =>
    command
      .option("--stream <name>", "JetStream audit stream (TOLLGATE_AUDIT_STREAM)", deps.auditStream)
      .option(
        "--subject-prefix <prefix>",
        "audit subject prefix (TOLLGATE_AUDIT_SUBJECT_PREFIX)",
        deps.auditSubjectPrefix,
      )
      .addOption(deps.apiOption());
  streamOptions(
    audit
      .command("verify")
      .description("re-verify hash chains and signed checkpoints of the stream or of an exported file"),
  )
    .option("--since <time>", "only from this time: a duration ago (24h) or ISO 8601")
    .option("--file <path>", "verify an export (cloudtrail or jsonl .gz) with its checkpoints sidecar, offline")
    .action(async (opts: { since?: string; file?: string; stream: string; subjectPrefix: string; api?: string }) => {
      if (opts.file !== undefined) {
        if (opts.since !== undefined) throw new CliError("--since and --file cannot be combined");
        await auditVerifyCommand({ kind: "file", path: opts.file }, deps.io);
        return;
      }
      const keys = await fetchEdgeKeys(deps.client(opts));
      const sinceMs = opts.since === undefined ? undefined : parseTimeMs(opts.since, Date.now(), "--since");
      await withJetStream(deps.natsUrl, (js) =>
        auditVerifyCommand(
          { kind: "stream", js, stream: opts.stream, subjectPrefix: opts.subjectPrefix, sinceMs, keys },
          deps.io,
        ),
      );
    });
  audit
    .command("alerts")
    .description("integrity alerts (gaps, forks, altered events, bad checkpoints), newest first")
    .option("--edge <name>", "only this edge")
    .option("--since <time>", "from this time: a duration ago (24h) or ISO 8601")
    .option("--limit <n>", "maximum alerts (up to 1000)", "100")
    .option("--json", "one JSON alert per line", false)
    .addOption(deps.apiOption())
    .action(async (opts: { edge?: string; since?: string; limit: string; json: boolean; api?: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliError("--limit must be a positive integer");
      await auditAlertsCommand(
        deps.client(opts),
        {
          edge: opts.edge,
          sinceMs: opts.since === undefined ? undefined : parseTimeMs(opts.since, Date.now(), "--since"),
          limit,
          json: opts.json,
        },
        deps.io,
      );
    });
  streamOptions(
    audit.command("export").description("write events (gzip) with their checkpoints and edge keys for retention"),
  )
    .requiredOption("--since <time>", "from this time: a duration ago (24h) or ISO 8601")
    .option("--until <time>", "before this time (default: now)")
    .addOption(new Option("--format <format>", "file format").choices(EXPORT_FORMATS).default("jsonl"))
    .requiredOption("--out <dir>", "directory to write to")
    .action(
      async (opts: {
        since: string;
        until?: string;
        format: ExportFormat;
        out: string;
        stream: string;
        subjectPrefix: string;
        api?: string;
      }) => {
        const now = Date.now();
        const keys = await fetchEdgeKeys(deps.client(opts));
        await withJetStream(deps.natsUrl, (js) =>
          auditExportCommand(
            {
              js,
              stream: opts.stream,
              subjectPrefix: opts.subjectPrefix,
              keys,
              format: opts.format,
              outDir: opts.out,
              sinceMs: parseTimeMs(opts.since, now, "--since"),
              untilMs: opts.until === undefined ? now : parseTimeMs(opts.until, now, "--until"),
            },
            deps.io,
          ),
        );
      },
    );
}
