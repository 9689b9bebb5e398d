import * as fs from "node:fs";
import { join } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";

/**
 * A local write-ahead journal for audit records: append-only segment files, group-committed.
 *
 * Layout: `<dir>/<20-digit base offset>.wal`. Offsets are global byte positions across all
 * segments, so a segment's name is the offset of its first byte and the next segment starts
 * where the previous one ended. A record is
 *
 *   u32 BE payload length ‖ u32 BE CRC-32 of (type ‖ payload) ‖ u8 type ‖ payload
 *
 * Appends made while a write is in flight (or in the same event-loop turn) share one commit: one
 * `writev` to the segment, which is opened with O_DSYNC (data and size are on disk when it
 * returns, as after `write` + `fdatasync`). Each {@link AuditJournal.append} resolves only after
 * the commit that covers it. An append with `deferSync` (a record nobody waits for before acting,
 * such as a call's final event) does not start a commit of its own: it rides along with the next
 * one, or is committed `deferredSyncMs` later if none comes first. So a lone caller pays one
 * commit per call, not two, and its next intent never waits behind the previous call's
 * completion.
 *
 * On open, a torn tail (a partial or corrupt last record after a crash) is truncated and a
 * {@link JournalRecordType.Start} record is appended, so readers can tell which records were
 * written by an earlier run of the process.
 */

/** Record types. */
export const JournalRecordType = {
  /** An audit event as known before the call is forwarded. */
  Intent: 1,
  /** The final event of a call (or the only event of a call that was never forwarded). */
  Completion: 2,
  /** Written on every open: records before it belong to an earlier run. */
  Start: 3,
  /**
   * A call's final event like {@link JournalRecordType.Completion}, encoded once for chain and
   * JetStream (see audit-wire.ts).
   */
  Final: 4,
} as const;
/** One of {@link JournalRecordType}. */
export type JournalRecordType = (typeof JournalRecordType)[keyof typeof JournalRecordType];

/** One record read back from the journal. */
export interface JournalRecord {
  /** Global offset of the record's first byte. */
  offset: number;
  /** Offset just past the record (where the next one starts). */
  nextOffset: number;
  type: JournalRecordType;
  payload: Buffer;
}

/** Stable codes of {@link AuditJournalError}. */
export type AuditJournalErrorCode = "ERR_JOURNAL_FULL" | "ERR_JOURNAL_CLOSED" | "ERR_JOURNAL_IO" | "ERR_JOURNAL_RECORD";

/** A journal failure. `ERR_JOURNAL_FULL`: the un-shipped backlog reached `maxBytes`. */
export class AuditJournalError extends Error {
  override readonly name = "AuditJournalError";
  constructor(
    readonly code: AuditJournalErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options for {@link AuditJournal.open}. */
export interface AuditJournalOptions {
  /** Directory of the segment files; created (0700) if missing. */
  dir: string;
  /** A segment is closed and a new one started once it reaches this size. Default 64 MiB. */
  segmentBytes?: number;
  /**
   * Bound on the un-shipped backlog (bytes from the oldest record still needed to the end).
   * An append that would exceed it rejects with `ERR_JOURNAL_FULL`. Default 1 GiB.
   */
  maxBytes?: number;
  /** Largest accepted record payload. Default 16 MiB. */
  maxRecordBytes?: number;
  /**
   * Longest wait before a `deferSync` append is committed when no other append starts a commit.
   * Default 5 ms; 0 commits them like any other append.
   */
  deferredSyncMs?: number;
}

/** Options of {@link AuditJournal.append}. */
export interface JournalAppendOptions {
  /**
   * The record completes an intent already in the journal and is accepted past `maxBytes`
   * (see {@link AuditJournal.append}).
   */
  completesIntent?: boolean;
  /**
   * Nobody acts on this record's durability at once: commit it with the next commit, or within
   * `deferredSyncMs` (the promise still resolves only once it is on disk).
   */
  deferSync?: boolean;
}

interface ResolvedAuditJournalOptions {
  dir: string;
  segmentBytes: number;
  maxBytes: number;
  maxRecordBytes: number;
  deferredSyncMs: number;
}

/** Applies {@link AuditJournalOptions} defaults. */
export function resolveAuditJournalOptions(options: AuditJournalOptions): ResolvedAuditJournalOptions {
  return {
    dir: options.dir,
    segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
    maxBytes: options.maxBytes ?? 1024 * 1024 * 1024,
    maxRecordBytes: options.maxRecordBytes ?? 16 * 1024 * 1024,
    deferredSyncMs: options.deferredSyncMs ?? 5,
  };
}

/** Counters for tests and metrics. */
export interface AuditJournalStats {
  /** Records appended since open. */
  appends: number;
  /** Group commits (one O_DSYNC writev each) since open. */
  fsyncs: number;
  /** Bytes truncated from a torn tail at open. */
  truncatedBytes: number;
}

const HEADER_BYTES = 9;
/**
 * The active segment is written with O_DSYNC: each `writev` returns once its data (and the file
 * size it changes) is on stable storage, as `write` + `fdatasync` would, in one thread-pool job
 * instead of two.
 */
const SEGMENT_WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_DSYNC;
/** Bound on the in-memory copy of the newest durable records (see `#tail`). */
const TAIL_CACHE_BYTES = 8 * 1024 * 1024;
const SEGMENT_SUFFIX = ".wal";
/** Fills the slots of forgotten records in the tail cache until it is compacted. */
const DROPPED: JournalRecord = Object.freeze({
  offset: -1,
  nextOffset: -1,
  type: JournalRecordType.Start,
  payload: Buffer.alloc(0),
});

/** CRC-32 (IEEE, as zlib) of the given buffers, in order. */
export function crc32(...parts: Uint8Array[]): number {
  let c = 0;
  for (const p of parts) c = zlibCrc32(p, c);
  return c;
}

function segmentName(base: number): string {
  return `${base.toString().padStart(20, "0")}${SEGMENT_SUFFIX}`;
}

function encodeRecord(type: JournalRecordType, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out[8] = type;
  out.set(payload, HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

/** Parses whole, valid records from `buf` (which starts at global offset `base`). Stops at the first bad one. */
function parseRecords(
  buf: Buffer,
  base: number,
  maxRecordBytes: number,
): { records: JournalRecord[]; validBytes: number } {
  const records: JournalRecord[] = [];
  let pos = 0;
  while (pos + HEADER_BYTES <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf[pos + 8] as number;
    if (len > maxRecordBytes || type < 1 || type > 4 || pos + HEADER_BYTES + len > buf.length) break;
    const body = buf.subarray(pos + 8, pos + HEADER_BYTES + len);
    if (crc32(body) !== buf.readUInt32BE(pos + 4)) break;
    records.push({
      offset: base + pos,
      nextOffset: base + pos + HEADER_BYTES + len,
      type: type as JournalRecordType,
      payload: Buffer.from(body.subarray(1)),
    });
    pos += HEADER_BYTES + len;
  }
  return { records, validBytes: pos };
}

function p<T>(fn: (cb: (err: NodeJS.ErrnoException | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

/** Makes a directory entry change (create, rename, unlink) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await p<number>((cb) => fs.open(dir, "r", cb));
  try {
    await p<void>((cb) => fs.fsync(fd, (e) => cb(e, undefined)));
  } finally {
    fs.closeSync(fd);
  }
}

interface Segment {
  base: number;
  size: number;
}

interface Pending {
  buf: Buffer;
  resolve: (offset: number) => void;
  reject: (err: unknown) => void;
}

/** The write-ahead journal; see the module comment. Open with {@link AuditJournal.open}. */
export class AuditJournal {
  readonly #o: ResolvedAuditJournalOptions;
  readonly #segments: Segment[];
  #fd: number;
  /** Offset just past the last durable (fsynced) record. */
  #durableEnd: number;
  /** Offset just past the last accepted (queued or written) record. */
  #acceptedEnd: number;
  /** Oldest offset a reader still needs; everything before may be deleted. */
  #lowWatermark: number;
  #queue: Pending[] = [];
  /** Queued appends that wait for their commit (not `deferSync`). */
  #urgent = 0;
  #flushing = false;
  #flushScheduled = false;
  /** Commits deferred appends when no other append started a commit first. */
  #deferredTimer: NodeJS.Timeout | undefined;
  #failed: Error | undefined;
  #closed = false;
  #waiters: Array<() => void> = [];
  readonly #listeners = new Set<() => void>();
  /**
   * The most recent durable records, kept in memory so the shipper reads what was just
   * committed without reopening, rereading and re-checksumming the segment file. Contiguous,
   * bounded by {@link TAIL_CACHE_BYTES}; anything not in it is read from disk.
   */
  #tail: JournalRecord[] = [];
  #tailStart = 0;
  #tailBytes = 0;
  readonly stats: AuditJournalStats = { appends: 0, fsyncs: 0, truncatedBytes: 0 };

  private constructor(o: ResolvedAuditJournalOptions, segments: Segment[], fd: number, truncated: number) {
    this.#o = o;
    this.#segments = segments;
    this.#fd = fd;
    const last = segments[segments.length - 1] as Segment;
    this.#durableEnd = last.base + last.size;
    this.#acceptedEnd = this.#durableEnd;
    this.#lowWatermark = (segments[0] as Segment).base;
    this.stats.truncatedBytes = truncated;
  }

  /** Opens (or creates) the journal in `options.dir`, repairs a torn tail and appends a Start record. */
  static async open(options: AuditJournalOptions): Promise<AuditJournal> {
    const o = resolveAuditJournalOptions(options);
    await fs.promises.mkdir(o.dir, { recursive: true, mode: 0o700 });
    const names = (await fs.promises.readdir(o.dir)).filter((n) => /^\d{20}\.wal$/.test(n)).sort();
    const segments: Segment[] = [];
    for (const n of names) {
      const st = await fs.promises.stat(join(o.dir, n));
      segments.push({ base: Number(n.slice(0, 20)), size: st.size });
    }
    let truncated = 0;
    if (segments.length === 0) {
      segments.push({ base: 0, size: 0 });
      const fd = fs.openSync(join(o.dir, segmentName(0)), "a", 0o600);
      fs.closeSync(fd);
      await fsyncDir(o.dir);
    }
    const last = segments[segments.length - 1] as Segment;
    const lastPath = join(o.dir, segmentName(last.base));
    const data = await fs.promises.readFile(lastPath);
    const { validBytes } = parseRecords(data, last.base, o.maxRecordBytes);
    if (validBytes < data.length) {
      truncated = data.length - validBytes;
      await fs.promises.truncate(lastPath, validBytes);
    }
    last.size = validBytes;
    const fd = fs.openSync(lastPath, SEGMENT_WRITE_FLAGS, 0o600);
    if (truncated > 0) fs.fdatasyncSync(fd);
    const journal = new AuditJournal(o, segments, fd, truncated);
    await journal.append(JournalRecordType.Start, Buffer.from(JSON.stringify({ time: new Date().toISOString() })));
    return journal;
  }

  /** The journal directory. */
  get dir(): string {
    return this.#o.dir;
  }

  /** Offset just past the last durable record. */
  get durableEnd(): number {
    return this.#durableEnd;
  }

  /** Offset of the oldest retained segment. */
  get startOffset(): number {
    return (this.#segments[0] as Segment).base;
  }

  /** Bytes from the oldest still-needed record to the end (what `maxBytes` bounds). */
  get backlogBytes(): number {
    return this.#acceptedEnd - this.#lowWatermark;
  }

  /** False once a write failed or the journal was closed: the edge must then refuse calls. */
  get healthy(): boolean {
    return this.#failed === undefined && !this.#closed;
  }

  /** True when the backlog leaves less than `reserveBytes` of room under `maxBytes`. */
  nearlyFull(reserveBytes: number): boolean {
    return this.backlogBytes + reserveBytes > this.#o.maxBytes;
  }

  /**
   * Appends one record; resolves with its offset once it is on disk (written with O_DSYNC). Rejects with
   * `ERR_JOURNAL_FULL` when the backlog would exceed `maxBytes`, `ERR_JOURNAL_IO` after a write
   * failure, `ERR_JOURNAL_CLOSED` after {@link close}.
   *
   * `options.completesIntent`: the record completes an intent already in the journal and is
   * accepted past `maxBytes`. Refusing it would lose the outcome of a call that reached AWS and
   * leave its intent pending until a restart, pinning the backlog (and so the edge refusing
   * every call) after the outage that filled it; the overshoot is bounded by the calls in flight.
   */
  append(type: JournalRecordType, payload: Uint8Array, options?: JournalAppendOptions): Promise<number> {
    if (this.#closed) return Promise.reject(new AuditJournalError("ERR_JOURNAL_CLOSED", "audit journal is closed"));
    if (this.#failed !== undefined) {
      return Promise.reject(
        new AuditJournalError("ERR_JOURNAL_IO", "audit journal write failed earlier", { cause: this.#failed }),
      );
    }
    if (payload.length > this.#o.maxRecordBytes) {
      return Promise.reject(
        new AuditJournalError("ERR_JOURNAL_RECORD", `record of ${payload.length} bytes is too large`),
      );
    }
    const buf = encodeRecord(type, payload);
    if (
      type !== JournalRecordType.Start &&
      options?.completesIntent !== true &&
      this.backlogBytes + buf.length > this.#o.maxBytes
    ) {
      return Promise.reject(
        new AuditJournalError(
          "ERR_JOURNAL_FULL",
          `audit journal backlog of ${this.backlogBytes} bytes reached its bound of ${this.#o.maxBytes}`,
        ),
      );
    }
    this.#acceptedEnd += buf.length;
    this.stats.appends++;
    const deferred = options?.deferSync === true && this.#o.deferredSyncMs > 0;
    if (!deferred) this.#urgent++;
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ buf, resolve, reject });
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushing || this.#flushScheduled) return;
    if (this.#urgent === 0) {
      // Only deferred appends: commit them with the next urgent append, or when the timer fires.
      this.#deferredTimer ??= setTimeout(() => {
        this.#deferredTimer = undefined;
        this.#urgent++;
        this.#scheduleFlush();
      }, this.#o.deferredSyncMs);
      return;
    }
    if (this.#deferredTimer !== undefined) {
      clearTimeout(this.#deferredTimer);
      this.#deferredTimer = undefined;
    }
    this.#flushScheduled = true;
    // setImmediate gathers every append made in this event-loop turn into one commit.
    setImmediate(() => {
      this.#flushScheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing || this.#queue.length === 0) return;
    this.#flushing = true;
    const batch = this.#queue;
    this.#queue = [];
    // This commit takes every queued append, the deferred ones too.
    this.#urgent = 0;
    if (this.#deferredTimer !== undefined) {
      clearTimeout(this.#deferredTimer);
      this.#deferredTimer = undefined;
    }
    try {
      let seg = this.#segments[this.#segments.length - 1] as Segment;
      if (seg.size >= this.#o.segmentBytes) seg = await this.#rotate();
      const buffers = batch.map((b) => b.buf);
      let total = 0;
      for (const b of buffers) total += b.length;
      let written = 0;
      // O_DSYNC (SEGMENT_WRITE_FLAGS): durable once writev returns.
      while (written < total) {
        const rest = written === 0 ? buffers : sliceBuffers(buffers, written);
        written += await p<number>((cb) => fs.writev(this.#fd, rest, cb));
      }
      this.stats.fsyncs++;
      let at = seg.base + seg.size;
      seg.size += total;
      this.#durableEnd = seg.base + seg.size;
      for (const b of batch) {
        this.#cacheRecord(at, b.buf);
        b.resolve(at);
        at += b.buf.length;
      }
      this.#wake();
    } catch (err) {
      this.#failed = err instanceof Error ? err : new Error(String(err));
      const e = new AuditJournalError("ERR_JOURNAL_IO", "audit journal write failed", { cause: err });
      for (const b of [...batch, ...this.#queue]) b.reject(e);
      this.#queue = [];
      this.#urgent = 0;
      this.#wake();
    } finally {
      this.#flushing = false;
    }
    if (this.#queue.length > 0) this.#scheduleFlush();
  }

  #cacheRecord(offset: number, buf: Buffer): void {
    const last = this.#tail[this.#tail.length - 1];
    if (last !== undefined && last.nextOffset !== offset) this.#dropTail(this.#tail.length);
    this.#tail.push({
      offset,
      nextOffset: offset + buf.length,
      type: buf[8] as JournalRecordType,
      payload: buf.subarray(HEADER_BYTES),
    });
    this.#tailBytes += buf.length;
    if (this.#tailBytes > TAIL_CACHE_BYTES) this.#dropTail(Math.ceil((this.#tail.length - this.#tailStart) / 2));
  }

  /** Forgets the oldest `n` cached records. */
  #dropTail(n: number): void {
    const end = Math.min(this.#tailStart + n, this.#tail.length);
    for (let i = this.#tailStart; i < end; i++) {
      const r = this.#tail[i] as JournalRecord;
      this.#tailBytes -= r.nextOffset - r.offset;
      // Let the record (and the buffer its payload views) go now, not at the next compaction:
      // otherwise a read record stays reachable until up to 1024 more have been read, long
      // enough to survive young-generation GCs and be promoted to the old generation.
      this.#tail[i] = DROPPED;
    }
    this.#tailStart = end;
    if (this.#tailStart === this.#tail.length || this.#tailStart > 1024) {
      this.#tail = this.#tail.slice(this.#tailStart);
      this.#tailStart = 0;
    }
  }

  /** Cached records from `offset` on (none when `offset` is not a cached record's start). */
  #readCached(offset: number, maxBytes: number): JournalRecord[] | undefined {
    const first = this.#tail[this.#tailStart];
    if (first === undefined || offset < first.offset) return undefined;
    // Records before `offset` have been read: the reader moves forward, so drop them.
    let i = this.#tailStart;
    while (i < this.#tail.length && (this.#tail[i] as JournalRecord).offset < offset) i++;
    this.#dropTail(i - this.#tailStart);
    const start = this.#tail[this.#tailStart];
    if (start === undefined || start.offset !== offset) return undefined;
    const out: JournalRecord[] = [];
    let budget = maxBytes;
    for (let j = this.#tailStart; j < this.#tail.length && budget > 0; j++) {
      const r = this.#tail[j] as JournalRecord;
      out.push(r);
      budget -= r.nextOffset - r.offset;
    }
    return out;
  }

  async #rotate(): Promise<Segment> {
    const prev = this.#segments[this.#segments.length - 1] as Segment;
    const base = prev.base + prev.size;
    const fd = await p<number>((cb) => fs.open(join(this.#o.dir, segmentName(base)), SEGMENT_WRITE_FLAGS, 0o600, cb));
    await fsyncDir(this.#o.dir);
    fs.closeSync(this.#fd);
    this.#fd = fd;
    const seg = { base, size: 0 };
    this.#segments.push(seg);
    return seg;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
    for (const f of this.#listeners) f();
  }

  /** Calls `listener` whenever more records become durable (and on close); returns an unsubscribe function. */
  onDurable(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once durable data exists past `offset`, or after `timeoutMs` (whichever is first). */
  waitForData(offset: number, timeoutMs: number): Promise<void> {
    if (this.#durableEnd > offset || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#waiters.push(done);
    });
  }

  /**
   * Reads whole durable records starting at `offset` (a record boundary), up to about
   * `maxBytes` (at least one record if any), never crossing into records not yet fsynced.
   */
  async read(offset: number, maxBytes: number): Promise<JournalRecord[]> {
    const cached = this.#readCached(offset, maxBytes);
    if (cached !== undefined) return cached;
    const out: JournalRecord[] = [];
    let at = offset;
    let budget = maxBytes;
    while (at < this.#durableEnd && budget > 0) {
      const i = this.#segmentIndex(at);
      if (i < 0) throw new AuditJournalError("ERR_JOURNAL_RECORD", `offset ${at} is not in a retained segment`);
      const seg = this.#segments[i] as Segment;
      const segEnd = Math.min(seg.base + seg.size, this.#durableEnd);
      if (at >= segEnd) {
        if (i === this.#segments.length - 1) break;
        at = (this.#segments[i + 1] as Segment).base;
        continue;
      }
      let want = Math.min(segEnd - at, Math.max(budget, HEADER_BYTES));
      let records: JournalRecord[] = [];
      for (;;) {
        const buf = Buffer.allocUnsafe(want);
        const n = await this.#readAt(seg.base, buf, at - seg.base);
        const parsed = parseRecords(buf.subarray(0, n), at, this.#o.maxRecordBytes);
        records = parsed.records;
        if (records.length > 0 || want >= segEnd - at) break;
        // The first record is larger than the budget: read exactly it.
        want = Math.min(segEnd - at, HEADER_BYTES + buf.readUInt32BE(0));
      }
      if (records.length === 0) {
        throw new AuditJournalError("ERR_JOURNAL_RECORD", `corrupt journal record at offset ${at}`);
      }
      for (const r of records) {
        out.push(r);
        budget -= r.nextOffset - r.offset;
        at = r.nextOffset;
      }
    }
    return out;
  }

  async #readAt(base: number, buf: Buffer, position: number): Promise<number> {
    const fd = await p<number>((cb) => fs.open(join(this.#o.dir, segmentName(base)), "r", cb));
    try {
      let n = 0;
      while (n < buf.length) {
        const r = await p<number>((cb) => fs.read(fd, buf, n, buf.length - n, position + n, cb));
        if (r === 0) break;
        n += r;
      }
      return n;
    } finally {
      fs.closeSync(fd);
    }
  }

  #segmentIndex(offset: number): number {
    for (let i = this.#segments.length - 1; i >= 0; i--) {
      if ((this.#segments[i] as Segment).base <= offset) return i;
    }
    return -1;
  }

  /**
   * Declares that no reader needs records before `offset` any more: whole segments below it
   * (never the active one) are deleted and the backlog shrinks.
   */
  async release(offset: number): Promise<void> {
    if (offset <= this.#lowWatermark) return;
    this.#lowWatermark = Math.min(offset, this.#durableEnd);
    let removed = false;
    while (this.#segments.length > 1) {
      const first = this.#segments[0] as Segment;
      const next = this.#segments[1] as Segment;
      if (next.base > this.#lowWatermark) break;
      await fs.promises.unlink(join(this.#o.dir, segmentName(first.base)));
      this.#segments.shift();
      removed = true;
    }
    if (removed) await fsyncDir(this.#o.dir);
  }

  /**
   * Commits every queued append now, deferred ones included, and resolves once they are durable
   * (or failed: their own promises carry the error).
   */
  async sync(): Promise<void> {
    if (this.#queue.length === 0 && !this.#flushing) return;
    const target = this.#acceptedEnd;
    this.#urgent++;
    this.#scheduleFlush();
    while (this.#durableEnd < target && this.#failed === undefined && !this.#closed) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Waits for queued appends, then closes the file. Later appends reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#deferredTimer !== undefined) {
      clearTimeout(this.#deferredTimer);
      this.#deferredTimer = undefined;
    }
    while (this.#queue.length > 0 || this.#flushing) {
      await new Promise((r) => setTimeout(r, 1));
      if (!this.#flushing && this.#queue.length > 0) await this.#flush();
    }
    this.#closed = true;
    this.#wake();
    fs.closeSync(this.#fd);
  }
}

function sliceBuffers(buffers: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const b of buffers) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
