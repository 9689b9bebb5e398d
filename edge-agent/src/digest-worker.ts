/**
 * Worker thread of {@link DigestPool} (offthread-digest.ts): keeps one {@link PayloadDigest} per
 * transfer and answers every batch with an acknowledgement (the sender's backpressure) that
 * hands the batch's buffer back, and the last one with the digest.
 */
import { parentPort } from "node:worker_threads";
import type { DigestReply, DigestRequest } from "./offthread-digest.js";
import { PayloadDigest } from "./payload-digest.js";

const port = parentPort;
if (port === null) throw new Error("digest-worker.js runs as a worker thread");

const digests = new Map<number, PayloadDigest>();

port.on("message", (m: DigestRequest) => {
  let d = digests.get(m.id);
  if (d === undefined) {
    d = new PayloadDigest(m.mode);
    digests.set(m.id, d);
  }
  if (m.data !== undefined) d.update(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  const acked = m.data?.byteLength ?? 0;
  let reply: DigestReply;
  if (m.abort === true) {
    digests.delete(m.id);
    return;
  }
  if (m.end === true) {
    digests.delete(m.id);
    reply = { id: m.id, acked, done: true, value: d.digest() };
  } else {
    reply = { id: m.id, acked };
  }
  // The batch buffer goes back to the main thread for reuse (no garbage per MiB hashed).
  if (m.data !== undefined) {
    reply.buffer = m.data.buffer as ArrayBuffer;
    port.postMessage(reply, [reply.buffer]);
  } else port.postMessage(reply);
});
