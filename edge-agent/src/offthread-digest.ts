import { Writable } from "node:stream";
import { Worker } from "node:worker_threads";
import type { Logger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { PayloadDigest, type PayloadDigestValue } from "./payload-digest.js";

/**
 * Object-body digests (size + SHA-256 of GetObject/PutObject/UploadPart bodies, issue #4) on a
 * worker thread. The SHA-256 of a large body is the largest cost the edge adds to a streaming
 * transfer (about 0.6–1.3 CPU-s per GiB); on its own thread it runs on another core while
 * the event loop only moves bytes.
 *
 * An {@link OffThreadDigest} is a Writable: pipe the body into it next to the real destination,
 * and `pipe`'s backpressure holds the body when the worker falls behind (at most
 * {@link MAX_OUTSTANDING} bytes per transfer are in flight to it). Bytes are copied into 512 KiB
 * batches (the body's own buffers are still being written elsewhere, so they cannot be
 * transferred); each batch buffer is transferred to the worker, not cloned, and handed back
 * with its acknowledgement for reuse, so a transfer allocates nothing per batch.
 */

/** Main thread → worker. */
export interface DigestRequest {
  id: number;
  mode: "raw" | "aws-chunked";
  data?: Uint8Array;
  end?: boolean;
  abort?: boolean;
}

/** Worker → main thread. */
export interface DigestReply {
  id: number;
  acked: number;
  /** The acknowledged batch's buffer, handed back for reuse. */
  buffer?: ArrayBuffer;
  done?: boolean;
  value?: PayloadDigestValue | undefined;
}

const BATCH_BYTES = 512 * 1024;
/** Bytes sent to the worker and not yet hashed, per transfer, before the source is held. */
export const MAX_OUTSTANDING = 4 * BATCH_BYTES;
/** Batch buffers kept for reuse (they travel to the worker and back). */
const MAX_FREE_BATCHES = 32;

interface Pending {
  onAck: (bytes: number) => void;
  onDone: (value: PayloadDigestValue | undefined) => void;
}

/** One worker thread per process, started on first use; unref'd while idle. */
export class DigestPool {
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #free: Buffer[] = [];
  readonly #logger: Logger;

  constructor(options: { logger?: Logger } = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  /** Starts a digest of one body. */
  digest(mode: "raw" | "aws-chunked"): OffThreadDigest {
    return new OffThreadDigest(this, mode);
  }

  /** @internal */
  open(p: Pending): number {
    const id = this.#nextId++;
    this.#pending.set(id, p);
    this.#ensureWorker().ref();
    return id;
  }

  /** @internal A batch buffer: a reused one when there is one. */
  batch(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
  }

  /** @internal */
  send(m: DigestRequest, transfer?: ArrayBuffer): void {
    this.#ensureWorker().postMessage(m, transfer !== undefined ? [transfer] : []);
    if (m.abort === true) this.#forget(m.id);
  }

  #forget(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
  }

  #ensureWorker(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    // Resolves to dist/digest-worker.js from both src/ (tests) and dist/ (the built package).
    const worker = new Worker(new URL("../dist/digest-worker.js", import.meta.url), {
      // It only hashes: a small heap keeps the edge's RSS down.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
    });
    worker.on("message", (r: DigestReply) => {
      if (r.buffer !== undefined && this.#free.length < MAX_FREE_BATCHES) this.#free.push(Buffer.from(r.buffer));
      const p = this.#pending.get(r.id);
      if (p === undefined) return;
      if (r.acked > 0) p.onAck(r.acked);
      if (r.done === true) {
        this.#forget(r.id);
        p.onDone(r.value);
      }
    });
    const fail = (err: Error): void => {
      this.#logger.error({ err: err.message }, "digest worker failed; object digests of calls in flight are lost");
      this.#worker = undefined;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) p.onDone(undefined);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (this.#worker === worker) fail(new Error(`digest worker exited with code ${code}`));
    });
    this.#worker = worker;
    return worker;
  }

  /** Stops the worker (digests in flight resolve `undefined`). */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    for (const p of this.#pending.values()) p.onDone(undefined);
    this.#pending.clear();
    if (w !== undefined) await w.terminate();
  }
}

/**
 * A body's digest computed by a {@link DigestPool} worker. `result` resolves once the stream
 * has ended (or was destroyed: then `undefined`, as for a body whose framing did not parse).
 */
export class OffThreadDigest extends Writable {
  readonly result: Promise<PayloadDigestValue | undefined>;
  readonly #pool: DigestPool;
  readonly #mode: "raw" | "aws-chunked";
  #id = 0;
  #batch: Buffer | undefined;
  #filled = 0;
  #outstanding = 0;
  #held: (() => void) | undefined;
  #settle!: (v: PayloadDigestValue | undefined) => void;
  #finalCallback: (() => void) | undefined;
  #settled = false;

  constructor(pool: DigestPool, mode: "raw" | "aws-chunked") {
    super({ highWaterMark: BATCH_BYTES });
    this.#pool = pool;
    this.#mode = mode;
    this.result = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  #start(): void {
    if (this.#id !== 0) return;
    this.#id = this.#pool.open({
      onAck: (n) => {
        this.#outstanding -= n;
        if (this.#held !== undefined && this.#outstanding <= MAX_OUTSTANDING) {
          const go = this.#held;
          this.#held = undefined;
          go();
        }
      },
      onDone: (v) => this.#finish(v),
    });
  }

  #finish(v: PayloadDigestValue | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#settle(v);
    const cb = this.#finalCallback;
    this.#finalCallback = undefined;
    cb?.();
    // A write held for backpressure must not hang a stream whose worker is gone.
    const held = this.#held;
    this.#held = undefined;
    held?.();
  }

  #flushBatch(end: boolean): void {
    const batch = this.#batch;
    const data = batch === undefined || this.#filled === 0 ? undefined : batch.subarray(0, this.#filled);
    const m: DigestRequest = { id: this.#id, mode: this.#mode };
    if (data !== undefined) m.data = data;
    if (end) m.end = true;
    if (data !== undefined) this.#outstanding += data.byteLength;
    this.#pool.send(m, data !== undefined ? (data.buffer as ArrayBuffer) : undefined);
    this.#batch = undefined;
    this.#filled = 0;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#settled) {
      callback();
      return;
    }
    this.#start();
    let at = 0;
    while (at < chunk.length) {
      this.#batch ??= this.#pool.batch();
      const n = Math.min(chunk.length - at, BATCH_BYTES - this.#filled);
      chunk.copy(this.#batch, this.#filled, at, at + n);
      this.#filled += n;
      at += n;
      if (this.#filled === BATCH_BYTES) this.#flushBatch(false);
    }
    if (this.#outstanding > MAX_OUTSTANDING) this.#held = () => callback();
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#settled) {
      callback();
      return;
    }
    this.#start();
    this.#finalCallback = () => callback();
    this.#flushBatch(true);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#settled) {
      if (this.#id !== 0) this.#pool.send({ id: this.#id, mode: this.#mode, abort: true });
      this.#finish(undefined);
    }
    callback(error);
  }
}

/** A body being digested as it streams; see {@link digestBody}. */
export interface BodyDigest {
  /**
   * The digest once the body has ended; `undefined` when it did not end (the call failed or
   * was cut) or its framing did not parse. Call it when the call is done: an unfinished
   * digest is abandoned.
   */
  settle(): Promise<PayloadDigestValue | undefined>;
  /** Stops digesting (the body is no longer forwarded); `settle()` then gives `undefined`. */
  abandon(): void;
}

/** Bodies at least this large (by Content-Length) are digested on the worker thread. */
export const OFFTHREAD_MIN_BYTES = 1024 * 1024;

/**
 * Digests `src` as it streams, on `pool`'s worker for bodies of `expectedBytes` ≥
 * {@link OFFTHREAD_MIN_BYTES} (attached with `pipe`, so the worker's backpressure holds `src`),
 * inline otherwise (a `data` listener; small bodies are not worth a thread hop).
 */
export function digestBody(
  src: NodeJS.ReadableStream & { readableEnded: boolean },
  mode: "raw" | "aws-chunked",
  pool: DigestPool | undefined,
  expectedBytes: number,
): BodyDigest {
  if (pool !== undefined && expectedBytes >= OFFTHREAD_MIN_BYTES) {
    const d = pool.digest(mode);
    src.pipe(d);
    return {
      settle: () => {
        if (!d.writableEnded) d.destroy();
        return d.result;
      },
      abandon: () => {
        src.unpipe(d);
        d.destroy();
      },
    };
  }
  const inline = new PayloadDigest(mode);
  let value: PayloadDigestValue | undefined;
  let abandoned = false;
  const onData = (chunk: Buffer): void => inline.update(chunk);
  src.on("data", onData);
  src.once("end", () => {
    if (!abandoned) value = inline.digest();
  });
  return {
    settle: () => Promise.resolve(value),
    abandon: () => {
      abandoned = true;
      src.off("data", onData);
    },
  };
}
