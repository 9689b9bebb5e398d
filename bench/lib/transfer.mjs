// Large-transfer clients: a 1 GiB GET streamed into a byte counter, and 1 GiB PUTs generated on
// the fly from one reused buffer, as plain bytes (UNSIGNED-PAYLOAD) or aws-chunked (with a
// CRC32 trailer, or with chained chunk signatures).
import { createHash, randomFillSync } from "node:crypto";
import { request } from "node:http";
import { crc32 } from "node:zlib";
import { ChunkSigner, EMPTY_SHA256, sdkHeaders, signRequest } from "./sigv4.mjs";

/** Upload encodings and the x-amz-content-sha256 that declares them. */
export const PUT_MODES = {
  "unsigned-payload": "UNSIGNED-PAYLOAD",
  "unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "signed-chunks": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
};

const CRLF = Buffer.from("\r\n");
const SIGNATURE_HEADER_BYTES = ";chunk-signature=".length + 64;

/** Length of an aws-chunked body of `size` bytes in `chunkSize` chunks. */
export function awsChunkedLength(size, chunkSize, { signed, trailer }) {
  const sig = signed ? SIGNATURE_HEADER_BYTES : 0;
  let total = 0;
  for (let left = size; left > 0; left -= chunkSize) {
    const n = Math.min(chunkSize, left);
    total += n.toString(16).length + sig + 2 + n + 2;
  }
  total += 1 + sig + 2; // "0" [;chunk-signature=...] CRLF
  if (trailer !== undefined) total += trailer.length + 2;
  return total + 2; // final CRLF
}

/** The (reused) payload block and its precomputed hashes, so the client spends no CPU per byte. */
export function makePayload(chunkSize) {
  const data = randomFillSync(Buffer.allocUnsafe(chunkSize));
  return { data, sha256: createHash("sha256").update(data).digest("hex") };
}

function crc32Base64(payload, size) {
  let crc = 0;
  for (let left = size; left > 0; left -= payload.data.length) {
    crc = crc32(payload.data.subarray(0, Math.min(payload.data.length, left)), crc);
  }
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString("base64");
}

/** Runs one request to completion; resolves with status, byte counts and seconds. */
function timed({ port, method, path, headers, writeBody, size }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytesDown = 0;
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        // Refused (501 NotImplemented, 403 ...): collect the error body and stop sending.
        const parts = [];
        res.on("data", (c) => parts.push(c));
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode, body: Buffer.concat(parts).toString().slice(0, 500), seconds: 0 });
        });
        return;
      }
      res.on("data", (c) => {
        bytesDown += c.length;
      });
      res.on("end", () => {
        const seconds = (performance.now() - t0) / 1000;
        resolve({
          status: 200,
          seconds,
          bytesDown,
          receivedUpstream: Number(res.headers["x-bench-received-bytes"] ?? Number.NaN),
          mibPerS: size / 1024 / 1024 / seconds,
        });
      });
      res.on("error", reject);
    });
    req.on("error", (err) => {
      if (req.destroyed && err.code === "ECONNRESET") return; // after a refusal
      reject(err);
    });
    if (writeBody === undefined) req.end();
    else writeBody(req);
  });
}

/** 1 GiB (or `size`) GET of the large object. */
export async function timedGet({ port, credential, region, size }) {
  const host = `127.0.0.1:${port}`;
  const path = "/bench-bucket/large";
  const { headers } = await signRequest({
    credential,
    service: "s3",
    region,
    method: "GET",
    host,
    path,
    headers: { "x-amz-content-sha256": EMPTY_SHA256, ...sdkHeaders() },
  });
  const r = await timed({ port, method: "GET", path, headers, size });
  if (r.status === 200 && r.bytesDown !== size) throw new Error(`GET returned ${r.bytesDown} bytes, expected ${size}`);
  return r;
}

function pump(req, next) {
  const go = () => {
    for (;;) {
      const more = next(req);
      if (more === "end") {
        req.end();
        return;
      }
      if (more === "wait") {
        req.once("drain", go);
        return;
      }
    }
  };
  go();
}

/** `size`-byte PUT in one of {@link PUT_MODES}; `payload` from {@link makePayload} (its length is the chunk size). */
export async function timedPut({ port, credential, region, size, mode, payload }) {
  const host = `127.0.0.1:${port}`;
  const path = `/bench-bucket/upload/object-${mode}`;
  const chunkSize = payload.data.length;
  const declared = PUT_MODES[mode];
  const headers = { "x-amz-content-sha256": declared, "content-type": "application/octet-stream", ...sdkHeaders() };
  let trailer;
  let contentLength = size;
  if (mode !== "unsigned-payload") {
    headers["content-encoding"] = "aws-chunked";
    headers["x-amz-decoded-content-length"] = String(size);
    if (mode === "unsigned-trailer") {
      headers["x-amz-trailer"] = "x-amz-checksum-crc32";
      trailer = `x-amz-checksum-crc32:${crc32Base64(payload, size)}`;
    }
    contentLength = awsChunkedLength(size, chunkSize, { signed: mode === "signed-chunks", trailer });
  }
  headers["content-length"] = String(contentLength);
  const signed = await signRequest({ credential, service: "s3", region, method: "PUT", host, path, headers });

  let left = size;
  let writeBody;
  if (mode === "unsigned-payload") {
    writeBody = (req) =>
      pump(req, () => {
        if (left === 0) return "end";
        const n = Math.min(chunkSize, left);
        left -= n;
        return req.write(n === chunkSize ? payload.data : payload.data.subarray(0, n)) ? "more" : "wait";
      });
  } else if (mode === "unsigned-trailer") {
    const full = Buffer.concat([Buffer.from(`${chunkSize.toString(16)}\r\n`), payload.data, CRLF]);
    writeBody = (req) =>
      pump(req, () => {
        if (left === 0) return "end";
        if (left >= chunkSize) {
          left -= chunkSize;
          if (left === 0) req.write(full);
          else return req.write(full) ? "more" : "wait";
        } else {
          const n = left;
          left = 0;
          req.write(Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), payload.data.subarray(0, n), CRLF]));
        }
        return req.write(`0\r\n${trailer}\r\n\r\n`) ? "more" : "wait";
      });
  } else {
    const chunks = new ChunkSigner({
      credential,
      service: "s3",
      region,
      amzDate: signed.amzDate,
      seedSignature: signed.signature,
    });
    const partialHash =
      size % chunkSize === 0
        ? ""
        : createHash("sha256")
            .update(payload.data.subarray(0, size % chunkSize))
            .digest("hex");
    writeBody = (req) =>
      pump(req, () => {
        if (left === 0) return "end";
        const n = Math.min(chunkSize, left);
        left -= n;
        const sig = chunks.next(n === chunkSize ? payload.sha256 : partialHash);
        req.cork();
        req.write(`${n.toString(16)};chunk-signature=${sig}\r\n`);
        req.write(n === chunkSize ? payload.data : payload.data.subarray(0, n));
        let ok = req.write(CRLF);
        if (left === 0) ok = req.write(`0;chunk-signature=${chunks.next(EMPTY_SHA256)}\r\n\r\n`);
        req.uncork();
        return ok ? "more" : "wait";
      });
  }
  const r = await timed({ port, method: "PUT", path, headers: signed.headers, writeBody, size });
  if (r.status === 200) r.sentBytes = contentLength;
  return r;
}
