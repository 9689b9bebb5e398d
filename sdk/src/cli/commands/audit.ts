import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { type AuditEvent, type AuditFilter, AuditFilterSchema } from "@tollgate/proto";
import { auditEventToJson } from "../../audit-json.js";
import type { ControlPlaneClient } from "../../control-plane-client.js";
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
}

/** Builds the AuditFilter for the flags; relative times are taken back from `nowMs`. */
export function buildAuditFilter(flags: AuditFilterFlags, nowMs: number): AuditFilter {
  return create(AuditFilterSchema, {
    principal: flags.principal ?? "",
    connection: flags.connection ?? "",
    service: flags.service ?? "",
    operation: flags.operation ?? "",
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
