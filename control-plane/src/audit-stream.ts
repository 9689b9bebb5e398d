import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { auditCheckpointStreamSubject, auditStreamSubject, TollgateError } from "@tollgate/sdk";
import type { Logger } from "./logger.js";

/** Options for {@link ensureAuditStream}. */
export interface AuditStreamOptions {
  /** Stream name. */
  stream: string;
  /** Subject prefix; the stream captures `<prefix>.audit.>`. */
  subjectPrefix: string;
  /** How long JetStream keeps events, ms; 0 = forever. */
  maxAgeMs: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped, ms. */
  duplicateWindowMs: number;
  /** JetStream replicas (`num_replicas`, 1..5; more than 1 needs a JetStream cluster). Default 1. */
  replicas?: number;
}

const NS_PER_MS = 1_000_000;

/**
 * Creates the audit stream (events and edges' checkpoints), or brings an existing one's compatible fields up to date, then
 * reads back what the server applied. The stream is append-only from clients' point of view:
 * `deny_delete` and `deny_purge` are required, and start-up fails if the server did not apply
 * them, or a different replica count than the one asked for.
 */
export async function ensureAuditStream(
  jsm: JetStreamManager,
  options: AuditStreamOptions,
  logger: Logger,
): Promise<StreamInfo> {
  const subject = auditStreamSubject(options.subjectPrefix);
  const wantedSubjects = [subject, auditCheckpointStreamSubject(options.subjectPrefix)];
  const wanted = {
    duplicate_window: options.duplicateWindowMs * NS_PER_MS,
    max_age: options.maxAgeMs * NS_PER_MS,
    deny_delete: true,
    deny_purge: true,
    num_replicas: options.replicas ?? 1,
  } satisfies Partial<StreamConfig>;

  let existing: StreamInfo | undefined;
  try {
    existing = await jsm.streams.info(options.stream);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
  }

  let info: StreamInfo;
  if (existing === undefined) {
    info = await jsm.streams.add({
      name: options.stream,
      subjects: wantedSubjects,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      ...wanted,
    });
    logger.info({ stream: options.stream, subject }, "created audit stream");
  } else {
    const subjects = [
      ...existing.config.subjects,
      ...wantedSubjects.filter((s) => !existing.config.subjects.includes(s)),
    ];
    info = await jsm.streams.update(options.stream, { ...existing.config, subjects, ...wanted });
    if (existing.config.storage !== StorageType.File) {
      logger.warn({ stream: options.stream, storage: existing.config.storage }, "audit stream is not file-backed");
    }
  }

  // Trust what the server reports, not what we asked for.
  const applied = (await jsm.streams.info(options.stream)).config;
  const problems: string[] = [];
  if (!applied.deny_delete) problems.push("deny_delete");
  if (!applied.deny_purge) problems.push("deny_purge");
  for (const s of wantedSubjects) if (!applied.subjects.includes(s)) problems.push(`subjects (${s})`);
  if (applied.num_replicas !== wanted.num_replicas) {
    problems.push(`num_replicas (asked ${wanted.num_replicas}, got ${applied.num_replicas})`);
  }
  if (problems.length > 0) {
    throw new TollgateError(
      "ERR_CONFIG",
      `audit stream ${options.stream}: server did not apply ${problems.join(", ")}`,
    );
  }
  if (applied.duplicate_window !== wanted.duplicate_window || applied.max_age !== wanted.max_age) {
    logger.warn(
      {
        stream: options.stream,
        duplicateWindowMs: applied.duplicate_window / NS_PER_MS,
        maxAgeMs: applied.max_age / NS_PER_MS,
      },
      "audit stream limits differ from the requested ones",
    );
  }
  return info;
}
