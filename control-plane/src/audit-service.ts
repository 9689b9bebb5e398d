import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import type { AuditFilter, AuditService } from "@tollgate/proto";
import { auditEventFromJson, auditFilterSubject } from "@tollgate/sdk";
import type { AuditCursor, AuditIndex } from "./audit-index.js";
import { withInfra } from "./infra-error.js";
import type { Logger } from "./logger.js";

/** Default page size of QueryEvents. */
export const DEFAULT_AUDIT_PAGE_SIZE = 100;
/** Largest page size of QueryEvents. */
export const MAX_AUDIT_PAGE_SIZE = 1000;

/** Dependencies of {@link createAuditServiceImpl}. */
export interface AuditServiceDeps {
  index: AuditIndex;
  js: JetStreamClient;
  stream: string;
  subjectPrefix: string;
  /** Aborted when the control plane shuts down; ends every tail. */
  shutdown: AbortSignal;
  logger: Logger;
}

/** Encodes a page token: base64url JSON of the last row's position. */
export function encodePageToken(cursor: AuditCursor): string {
  return Buffer.from(JSON.stringify({ t: cursor.eventTimeMs, s: cursor.streamSeq })).toString("base64url");
}

/** Decodes a page token; throws `InvalidArgument` on anything not made by {@link encodePageToken}. */
export function decodePageToken(token: string): AuditCursor {
  try {
    const raw = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { t?: unknown; s?: unknown };
    if (Number.isSafeInteger(raw.t) && Number.isSafeInteger(raw.s)) {
      return { eventTimeMs: raw.t as number, streamSeq: raw.s as number };
    }
  } catch {
    // fall through
  }
  throw new ConnectError("page_token is not valid", Code.InvalidArgument);
}

function timeBounds(filter: AuditFilter | undefined): { sinceMs?: number; untilMs?: number } {
  return {
    sinceMs: filter?.since === undefined ? undefined : timestampMs(filter.since),
    untilMs: filter?.until === undefined ? undefined : timestampMs(filter.until),
  };
}

/** AuditService: queries the audit index and tails the audit stream. */
export function createAuditServiceImpl(deps: AuditServiceDeps): ServiceImpl<typeof AuditService> {
  const { index, js, stream, subjectPrefix, shutdown, logger } = deps;
  return {
    async queryEvents(req) {
      if (req.pageSize < 0) throw new ConnectError("page_size must not be negative", Code.InvalidArgument);
      const pageSize = Math.min(req.pageSize === 0 ? DEFAULT_AUDIT_PAGE_SIZE : req.pageSize, MAX_AUDIT_PAGE_SIZE);
      const f = req.filter;
      const where = {
        principal: f?.principal,
        connection: f?.connection,
        service: f?.service,
        operation: f?.operation,
        resourceArn: f?.resourceArn,
        decision: f?.decision,
        errorCode: f?.errorCode,
        ...timeBounds(f),
      };
      const after = req.pageToken === "" ? undefined : decodePageToken(req.pageToken);
      const { rows, total } = await withInfra(
        "audit-index",
        () => ({
          rows: index.query({ ...where, after, limit: pageSize + 1 }),
          total: req.includeTotalCount ? index.count(where) : 0,
        }),
        logger,
      );
      const page = rows.slice(0, pageSize);
      const last = page[page.length - 1];
      return {
        events: page.map((r) => auditEventFromJson(r.json)),
        nextPageToken: rows.length > pageSize && last !== undefined ? encodePageToken(last) : "",
        totalCount: BigInt(total),
      };
    },

    async listAlerts(req) {
      if (req.pageSize < 0) throw new ConnectError("page_size must not be negative", Code.InvalidArgument);
      const limit = Math.min(req.pageSize === 0 ? DEFAULT_AUDIT_PAGE_SIZE : req.pageSize, MAX_AUDIT_PAGE_SIZE);
      const rows = await withInfra(
        "audit-index",
        () =>
          index.alerts({
            edge: req.edge,
            sinceMs: req.since === undefined ? undefined : timestampMs(req.since),
            limit,
          }),
        logger,
      );
      return {
        alerts: rows.map((a) => ({
          alertId: a.alertId,
          time: new Date(a.timeMs).toISOString(),
          edge: a.edge,
          kind: a.kind,
          sequence: a.sequence,
          eventId: a.eventId,
          detail: a.detail,
          streamSequence: BigInt(a.streamSeq),
        })),
      };
    },

    async *tailEvents(req, ctx) {
      const f = req.filter;
      const { sinceMs, untilMs } = timeBounds(f);
      const subject = auditFilterSubject(subjectPrefix, {
        connection: f?.connection,
        principal: f?.principal,
        service: f?.service,
        operation: f?.operation,
      });
      const signal = AbortSignal.any([ctx.signal, shutdown]);
      // Start just past the current end of the stream rather than DeliverPolicy.New: if the
      // ordered consumer is ever recreated before its first message, it resumes from this
      // sequence instead of replaying the stream from the beginning.
      const { consumer, messages } = await withInfra(
        "nats",
        async () => {
          const info = await (await js.streams.get(stream)).info();
          const consumer = await js.consumers.get(stream, {
            filter_subjects: subject,
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: info.state.last_seq + 1,
            inactive_threshold: 30_000,
          });
          return { consumer, messages: await consumer.consume({ max_messages: 100 }) };
        },
        logger,
      );
      const stop = (): void => messages.stop();
      signal.addEventListener("abort", stop, { once: true });
      if (signal.aborted) stop();
      logger.debug({ event: "tail_started", subject }, "audit tail started");
      try {
        for await (const m of messages) {
          let event: ReturnType<typeof auditEventFromJson>;
          try {
            event = auditEventFromJson(m.string());
          } catch (err) {
            logger.warn({ err, subject: m.subject, streamSeq: m.seq }, "skipping malformed audit event in tail");
            continue;
          }
          if (sinceMs !== undefined || untilMs !== undefined) {
            const t = Date.parse(event.eventTime);
            if ((sinceMs !== undefined && !(t >= sinceMs)) || (untilMs !== undefined && !(t < untilMs))) continue;
          }
          yield { event };
        }
      } finally {
        signal.removeEventListener("abort", stop);
        messages.stop();
        consumer.delete().catch(() => {
          // The server removes it after inactive_threshold anyway.
        });
        logger.debug({ event: "tail_stopped", subject }, "audit tail stopped");
      }
    },
  };
}
