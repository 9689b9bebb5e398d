#!/usr/bin/env node
// Edge memory (issue #3: peak RSS < 150 MiB per edge process). Needs a build (`npm run build`);
// the "edge" part also needs NATS with JetStream and Redis (the machine's, as `npm run bench`).
//
//   node edge-agent/bench/edge-memory.bench.mjs                      # all parts
//   node edge-agent/bench/edge-memory.bench.mjs --only modules       # no services needed
//   node edge-agent/bench/edge-memory.bench.mjs --transfer-mib 1024  # + GET and PUTs through the edge
//   node edge-agent/bench/edge-memory.bench.mjs --heap-snapshot DIR  # + a heap snapshot of the edge
//   node edge-agent/bench/edge-memory.bench.mjs --edge-node-flags=--max-semi-space-size=4
//
// Parts:
// - modules: fresh node processes (--expose-gc, gc before each reading) that import the classifier
//   alone, then the edge's whole module graph, then classify one S3 GetObject, one DynamoDB GetItem
//   and one STS GetCallerIdentity; process.memoryUsage() after each step and V8's heap spaces at
//   the end.
// - edge: a real single-process edge (TOLLGATE_EDGE_WORKERS=1, control plane and enrollment as
//   `npm run bench` does it, bench/lib/tollgate.mjs) in front of a local upstream child process;
//   VmRSS right after start and after one signed S3, DynamoDB and STS request each, then the peak
//   (VmHWM, reset per phase) of 200 small requests and of each large transfer.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { getHeapSpaceStatistics } from "node:v8";

const here = import.meta.dirname;
/** The checkout measured (BENCH_REPO measures another build, as `npm run bench` does). */
const repo = resolve(process.env.BENCH_REPO ?? resolve(here, "..", ".."));
const dist = join(repo, "edge-agent", "dist");
const mib = (n) => Math.round((n / 1048576) * 10) / 10;
const REGION = "us-east-1";
/** Rounds of one S3, one DynamoDB and one STS call (concurrently) after the first requests. */
const SMALL_ROUNDS = 500;

// ------------------------------------------------------------------------------------------------
// Child: the upstream (S3/DynamoDB/STS answers, a large GET body, a PUT sink).

function upstreamChild() {
  const block = Buffer.alloc(64 * 1024, 0x61);
  const server = createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
    let bytes = 0;
    req.on("data", (c) => {
      bytes += c.length;
    });
    req.on("end", () => {
      const large = /^\/bench-bucket\/large-(\d+)$/.exec(req.url ?? "");
      if (req.method === "GET" && large !== null) {
        let left = Number(large[1]);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(left) });
        const pump = () => {
          while (left > 0) {
            const n = Math.min(block.length, left);
            left -= n;
            if (!res.write(n === block.length ? block : block.subarray(0, n))) return void res.once("drain", pump);
          }
          res.end();
        };
        pump();
        return;
      }
      const target = req.headers["x-amz-target"];
      if (typeof target === "string") {
        const body = '{"Item":{"pk":{"S":"k-1"}}}';
        res.writeHead(200, { "content-type": "application/x-amz-json-1.0", "content-length": body.length });
        res.end(body);
        return;
      }
      if (req.method === "POST") {
        const body =
          '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>' +
          "<Arn>arn:aws:iam::123456789012:user/bench</Arn><UserId>AIDABENCH</UserId><Account>123456789012</Account>" +
          "</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>";
        res.writeHead(200, { "content-type": "text/xml", "content-length": body.length });
        res.end(body);
        return;
      }
      const body = req.method === "GET" ? "<small>bench</small>" : "";
      res.writeHead(200, { etag: '"0"', "x-bench-received-bytes": String(bytes), "content-length": body.length });
      res.end(body);
    });
  });
  server.listen(0, "127.0.0.1", () => process.stdout.write(`ready ${server.address().port}\n`));
  process.on("SIGTERM", () => process.exit(0));
}

// ------------------------------------------------------------------------------------------------
// Child: module and classifier memory in a fresh process.

const CLASSIFY = {
  s3: {
    method: "GET",
    rawPath: "/bench-bucket/small",
    query: [],
    headers: { host: "127.0.0.1:8787", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
    signingName: "s3",
  },
  dynamodb: {
    method: "POST",
    rawPath: "/",
    query: [],
    headers: { host: "127.0.0.1:8787", "x-amz-target": "DynamoDB_20120810.GetItem" },
    signingName: "dynamodb",
    body: Buffer.from('{"TableName":"t","Key":{"pk":{"S":"k"}}}'),
  },
  sts: {
    method: "POST",
    rawPath: "/",
    query: [],
    headers: { host: "127.0.0.1:8787", "content-type": "application/x-www-form-urlencoded" },
    signingName: "sts",
    body: Buffer.from("Action=GetCallerIdentity&Version=2011-06-15"),
  },
};

async function modulesChild(which) {
  const rows = [];
  const reading = (step) => {
    globalThis.gc();
    const m = process.memoryUsage();
    rows.push({
      step,
      rssMiB: mib(m.rss),
      heapUsedMiB: mib(m.heapUsed),
      heapTotalMiB: mib(m.heapTotal),
      externalMiB: mib(m.external),
    });
  };
  reading("bare node");
  const { classifyRequest } = await import(pathToFileURL(join(dist, "aws-classifier.js")).href);
  reading("import aws-classifier");
  if (which === "edge") {
    // Every static import of dist/main.js (what an edge process loads before its first line runs),
    // without running main itself.
    const main = readFileSync(join(dist, "main.js"), "utf8");
    const require = createRequire(join(dist, "main.js"));
    for (const [, spec] of main.matchAll(/^import (?!type )[^;]*? from "([^"]+)";$/gm)) {
      if (spec.startsWith("node:")) await import(spec);
      else if (spec.startsWith(".")) await import(pathToFileURL(join(dist, spec)).href);
      else await import(pathToFileURL(require.resolve(spec)).href);
    }
    reading("import main.js's modules");
  }
  for (const [name, input] of Object.entries(CLASSIFY)) {
    const c = classifyRequest({ ...input, region: REGION, accountId: "123456789012" });
    reading(`classify ${name} (${c.eventName})`);
  }
  const spaces = getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => ({ space: s.space_name, sizeMiB: mib(s.space_size), usedMiB: mib(s.space_used_size) }));
  process.stdout.write(`${JSON.stringify({ rows, spaces })}\n`);
}

function runModulesChild(which) {
  const out = execFileSync(process.execPath, ["--expose-gc", import.meta.filename, "--child", `modules-${which}`], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").at(-1));
}

// ------------------------------------------------------------------------------------------------
// The real edge.

function send({ port, method, path, headers, body }) {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      const parts = [];
      res.on("data", (c) => parts.push(c));
      res.on("end", () => resolvePromise({ status: res.statusCode, body: Buffer.concat(parts).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function edgePart({ transferMiB, heapSnapshotDir, edgeNodeFlags }) {
  process.env.TOLLGATE_EDGE_WORKERS = "1";
  const lib = join(here, "..", "..", "bench", "lib");
  const { startEdge, startTollgate, stopTollgate } = await import(join(lib, "tollgate.mjs"));
  const { cpuSeconds, peakRssMiB, resetPeakRss, rssMiB } = await import(join(lib, "processes.mjs"));
  const { EMPTY_SHA256, sdkHeaders, signRequest } = await import(join(lib, "sigv4.mjs"));
  const { makePayload, timedPut } = await import(join(lib, "transfer.mjs"));

  const upstream = spawn(process.execPath, [import.meta.filename, "--child", "upstream"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const upstreamPort = await new Promise((ok, fail) => {
    upstream.stdout.once("data", (d) => ok(Number(/ready (\d+)/.exec(String(d))?.[1])));
    upstream.once("exit", (code) => fail(new Error(`upstream exited (${code})`)));
  });
  let t;
  const result = {};
  try {
    t = await startTollgate({ upstreams: { bench: `http://127.0.0.1:${upstreamPort}` }, region: REGION });
    const flags = edgeNodeFlags.split(/\s+/).filter((f) => f !== "");
    if (heapSnapshotDir !== undefined) {
      mkdirSync(heapSnapshotDir, { recursive: true });
      flags.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${resolve(heapSnapshotDir)}`);
    }
    if (flags.length > 0) await startEdge(t, flags);
    const pid = t.edge.pid;
    const port = Number(new URL(t.edgeUrl).port);
    const host = `127.0.0.1:${port}`;
    const credential = t.credentials.bench;
    await new Promise((r) => setTimeout(r, 1000));
    result.atStartMiB = rssMiB(pid);
    const small = {
      s3: async () => {
        const path = "/bench-bucket/small";
        const headers = { "x-amz-content-sha256": EMPTY_SHA256, ...sdkHeaders() };
        const signed = await signRequest({
          credential,
          service: "s3",
          region: REGION,
          method: "GET",
          host,
          path,
          headers,
        });
        return send({ port, method: "GET", path, headers: signed.headers });
      },
      dynamodb: async () => {
        const body = JSON.stringify({ TableName: "bench-table", Key: { pk: { S: "k-1" } } });
        const headers = {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "DynamoDB_20120810.GetItem",
          "content-length": String(body.length),
          ...sdkHeaders(),
        };
        const signed = await signRequest({
          credential,
          service: "dynamodb",
          region: REGION,
          method: "POST",
          host,
          path: "/",
          headers,
          body,
        });
        return send({ port, method: "POST", path: "/", headers: signed.headers, body });
      },
      sts: async () => {
        const body = "Action=GetCallerIdentity&Version=2011-06-15";
        const headers = {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": String(body.length),
          ...sdkHeaders(),
        };
        const signed = await signRequest({
          credential,
          service: "sts",
          region: REGION,
          method: "POST",
          host,
          path: "/",
          headers,
          body,
        });
        return send({ port, method: "POST", path: "/", headers: signed.headers, body });
      },
    };
    result.afterFirstRequestMiB = {};
    for (const [name, call] of Object.entries(small)) {
      const r = await call();
      if (r.status !== 200) throw new Error(`${name}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
      result.afterFirstRequestMiB[name] = rssMiB(pid);
    }
    resetPeakRss(pid);
    const cpu0 = cpuSeconds(pid);
    for (let i = 0; i < SMALL_ROUNDS; i++) {
      await Promise.all(Object.values(small).map((call) => call()));
    }
    result.smallRequestsCpuMsPerCall = ((cpuSeconds(pid) - cpu0) * 1000) / (SMALL_ROUNDS * 3);
    result.smallRequestsPeakMiB = peakRssMiB(pid);
    result.afterSmallRequestsMiB = rssMiB(pid);
    if (heapSnapshotDir !== undefined) {
      const before = new Set(readdirSync(heapSnapshotDir));
      process.kill(pid, "SIGUSR2");
      for (let i = 0; i < 600 && readdirSync(heapSnapshotDir).every((f) => before.has(f)); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 2000));
      result.heapSnapshot = readdirSync(heapSnapshotDir).filter((f) => !before.has(f));
    }
    if (transferMiB > 0) {
      const size = transferMiB * 1024 * 1024;
      const payload = makePayload(64 * 1024);
      result.transferPeakMiB = {};
      result.transferCpuSPerGiB = {};
      const transfers = {
        GET: () => timedGetSized({ port, credential, size }),
        "PUT unsigned-payload": () =>
          timedPut({ port, credential, region: REGION, size, mode: "unsigned-payload", payload }),
        "PUT signed-chunks": () => timedPut({ port, credential, region: REGION, size, mode: "signed-chunks", payload }),
      };
      for (const [name, run] of Object.entries(transfers)) {
        resetPeakRss(pid);
        const cpu = cpuSeconds(pid);
        const r = await run();
        if (r.status !== 200) throw new Error(`${name}: HTTP ${r.status} ${r.body}`);
        result.transferPeakMiB[name] = peakRssMiB(pid);
        result.transferCpuSPerGiB[name] = (cpuSeconds(pid) - cpu) / (transferMiB / 1024);
      }
    }
    result.warnings = t.edge.counts;
  } finally {
    if (t !== undefined) await stopTollgate(t);
    upstream.kill("SIGTERM");
  }
  return result;
}

/** bench/lib/transfer.mjs's GET reads `/bench-bucket/large`; this upstream serves `/bench-bucket/large-<size>`. */
async function timedGetSized({ port, credential, size }) {
  const { EMPTY_SHA256, sdkHeaders, signRequest } = await import(join(here, "..", "..", "bench", "lib", "sigv4.mjs"));
  const host = `127.0.0.1:${port}`;
  const path = `/bench-bucket/large-${size}`;
  const headers = { "x-amz-content-sha256": EMPTY_SHA256, ...sdkHeaders() };
  const signed = await signRequest({ credential, service: "s3", region: REGION, method: "GET", host, path, headers });
  return new Promise((ok, fail) => {
    const req = request(
      { host: "127.0.0.1", port, method: "GET", path, headers: signed.headers, agent: false },
      (res) => {
        let bytes = 0;
        res.on("data", (c) => {
          bytes += c.length;
        });
        res.on("end", () =>
          ok(
            res.statusCode === 200 && bytes !== size
              ? { status: 0, body: `${bytes} of ${size} bytes` }
              : { status: res.statusCode, body: "" },
          ),
        );
        res.on("error", fail);
      },
    );
    req.on("error", fail);
    req.end();
  });
}

// ------------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    child: { type: "string" },
    only: { type: "string", default: "all" },
    "transfer-mib": { type: "string", default: "0" },
    "heap-snapshot": { type: "string" },
    "edge-node-flags": { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
});

if (values.child === "upstream") {
  upstreamChild();
} else if (values.child?.startsWith("modules-")) {
  await modulesChild(values.child.slice("modules-".length));
} else {
  const out = {};
  if (values.only === "all" || values.only === "modules") {
    out.classifierOnly = runModulesChild("classifier");
    out.edgeModules = runModulesChild("edge");
  }
  if (values.only === "all" || values.only === "edge") {
    out.edge = await edgePart({
      transferMiB: Number(values["transfer-mib"]),
      heapSnapshotDir: values["heap-snapshot"],
      edgeNodeFlags: values["edge-node-flags"],
    });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    for (const [name, part] of Object.entries(out)) {
      if (name === "edge") continue;
      process.stdout.write(`\n${name} (fresh process, gc before each reading; MiB)\n`);
      process.stdout.write(
        `${"step".padEnd(44)}${"rss".padStart(8)}${"heapUsed".padStart(10)}${"heapTotal".padStart(11)}${"external".padStart(10)}\n`,
      );
      for (const r of part.rows) {
        process.stdout.write(
          `${r.step.padEnd(44)}${String(r.rssMiB).padStart(8)}${String(r.heapUsedMiB).padStart(10)}${String(r.heapTotalMiB).padStart(11)}${String(r.externalMiB).padStart(10)}\n`,
        );
      }
      process.stdout.write(
        `heap spaces: ${part.spaces.map((s) => `${s.space} ${s.usedMiB}/${s.sizeMiB}`).join(", ")}\n`,
      );
    }
    if (out.edge !== undefined) {
      const e = out.edge;
      const r = (n) => Math.round(n);
      process.stdout.write(`\nedge (TOLLGATE_EDGE_WORKERS=1, VmRSS / VmHWM in MiB)\n`);
      process.stdout.write(
        `after start ${r(e.atStartMiB)}; after first request: ${Object.entries(e.afterFirstRequestMiB)
          .map(([k, v]) => `${k} ${r(v)}`)
          .join(", ")}\n`,
      );
      process.stdout.write(
        `${SMALL_ROUNDS * 3} small requests: peak ${r(e.smallRequestsPeakMiB)}, after ${r(e.afterSmallRequestsMiB)}; edge CPU ${e.smallRequestsCpuMsPerCall.toFixed(2)} ms/call\n`,
      );
      if (e.transferPeakMiB !== undefined) {
        process.stdout.write(
          `transfer peaks: ${Object.entries(e.transferPeakMiB)
            .map(([k, v]) => `${k} ${r(v)} (edge CPU ${e.transferCpuSPerGiB[k].toFixed(2)} s/GiB)`)
            .join(", ")}\n`,
        );
      }
      if (e.heapSnapshot !== undefined) process.stdout.write(`heap snapshot: ${e.heapSnapshot.join(", ")}\n`);
      if (e.warnings.warn + e.warnings.error > 0) process.stdout.write(`edge log: ${JSON.stringify(e.warnings)}\n`);
    }
  }
}
