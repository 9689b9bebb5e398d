#!/usr/bin/env node
// Tollgate benchmark: one command, four variants side by side against the same nginx upstream.
//   npm run bench [-- --duration 10 --warmup 2 --conns 1,16,64 --size-mib 1024 --repeat 2 --no-profile]
// See bench/README.md. Not part of `npm test`, not run in CI.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  constants as fsConstants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  write,
  writeFileSync,
} from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { pipeline as pipelineP } from "node:stream/promises";
import { parseArgs, promisify } from "node:util";
import { summarizeCpuProfile } from "./lib/cpu-profile.mjs";
import { NGINX, startNginx } from "./lib/nginx.mjs";
import {
  childPids,
  cpuSeconds,
  freePort,
  machineBusyCpuSeconds,
  peakRssMiB,
  pidByComm,
  reapedChildrenCpuSeconds,
  resetPeakRss,
  rssMiB,
  spawnUntilReady,
  stopChild,
} from "./lib/processes.mjs";
import { WORKLOADS, writeRequestFile } from "./lib/requests.mjs";
import { auditEventCount, edgeLaunchEnv, REPO, startEdge, startTollgate, stopTollgate } from "./lib/tollgate.mjs";
import { makePayload, PUT_MODES, timedGet, timedPut } from "./lib/transfer.mjs";

const BENCH = import.meta.dirname;
const REGION = "us-east-1";
const WRK = process.env.BENCH_WRK ?? "/usr/bin/wrk";
const TARGETS = { smallThroughputRatio: 0.6, addedP99Ms: 2, largeThroughputRatio: 0.9, peakRssMiB: 150 };

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "8" },
    warmup: { type: "string", default: "2" },
    conns: { type: "string", default: "1,16,64" },
    threads: { type: "string", default: "2" },
    "size-mib": { type: "string", default: "1024" },
    "chunk-kib": { type: "string", default: "64" },
    repeat: { type: "string", default: "1" },
    requests: { type: "string", default: "2000" },
    only: { type: "string", default: "all" }, // all | small | large
    variants: { type: "string", default: "direct,nginx-proxy,node-proxy,tollgate" },
    workloads: { type: "string", default: "" }, // default: all small workloads
    transfers: { type: "string", default: "" }, // default: get and every PUT mode
    profile: { type: "boolean", default: false }, // always profile the edge at the end
    "no-profile": { type: "boolean", default: false }, // never (default: only if a small-request target is missed)
    "profile-transfer": { type: "string", default: "signed-chunks" }, // the large transfer profiled
  },
});
const DURATION_S = Number(args.duration);
const WARMUP_S = Number(args.warmup);
const CONNS = args.conns.split(",").map(Number);
const THREADS = Number(args.threads);
const SIZE = Number(args["size-mib"]) * 1024 * 1024;
const CHUNK = Number(args["chunk-kib"]) * 1024;
const REPEAT = Number(args.repeat);

const log = (s) => process.stderr.write(`${s}\n`);
const started = Date.now();
const dir = mkdtempSync(join(tmpdir(), "tollgate-bench-run-"));
const run = promisify(execFile);

// ---------------------------------------------------------------- set-up
/** Everything we started, stopped in reverse order by cleanUp() (also on errors and Ctrl-C). */
const started_ = { sink: undefined, nginx: undefined, nodeProxy: undefined, tg: undefined };
let cleaning;
function cleanUp() {
  cleaning ??= (async () => {
    if (started_.tg !== undefined) await stopTollgate(started_.tg).catch((e) => log(`bench: ${e.message}`));
    await stopChild(started_.nodeProxy);
    await stopChild(started_.sink);
    if (started_.nginx !== undefined && started_.nginx.child.exitCode === null) {
      started_.nginx.child.kill("SIGQUIT");
      await started_.nginx.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
let result;
process.once("SIGINT", () => void cleanUp().then(() => process.exit(130)));
process.once("SIGTERM", () => void cleanUp().then(() => process.exit(143)));
try {
  const ports = { origin: await freePort(), proxy: await freePort(), sink: await freePort(), node: await freePort() };
  const sink = spawnUntilReady(process.execPath, [join(BENCH, "put-sink.mjs"), String(ports.sink)], {
    readyRe: /^ready (\d+)/,
    name: "put sink",
  });
  started_.sink = sink;
  await sink.ready;
  const nginx = await startNginx({
    dir: join(dir, "nginx"),
    originPort: ports.origin,
    proxyPort: ports.proxy,
    sinkPort: ports.sink,
    largeBytes: SIZE,
  });
  started_.nginx = nginx;
  // Read the sparse object once so that no variant pays for filling the page cache.
  await pipelineP(
    createReadStream(join(dir, "nginx/www/bench-bucket/large")),
    new Writable({ write: (_c, _e, cb) => cb() }),
  );
  const nodeProxy = spawnUntilReady(
    process.execPath,
    [join(BENCH, "node-proxy.mjs"), String(ports.node), String(ports.origin), String(ports.sink)],
    // The same malloc settings as the edge, so the floor is not measured with a handicap.
    { env: await edgeLaunchEnv({ ...process.env }), readyRe: /^ready (\d+)/, name: "node proxy" },
  );
  started_.nodeProxy = nodeProxy;
  await nodeProxy.ready;
  log(`bench: nginx :${ports.origin} (proxy :${ports.proxy}), PUT sink :${ports.sink}, node proxy :${ports.node}`);
  const tg = await startTollgate({
    upstreams: { bench: `http://127.0.0.1:${ports.origin}`, "bench-sink": `http://127.0.0.1:${ports.sink}` },
    region: REGION,
  });
  started_.tg = tg;
  const edgePort = () => Number(new URL(tg.edgeUrl).port);
  log(
    `bench: tollgate edge ${tg.edgeUrl} (pid ${tg.edge.pid}), control plane ${tg.apiUrl} (pid ${tg.controlPlane.pid})`,
  );

  const natsPid = pidByComm("nats-server");
  const nginxPids = () => [nginx.pid, ...childPids(nginx.pid)];

  /** CPU seconds per process group, for per-run deltas. */
  /** The edge's processes: the primary and its workers (TOLLGATE_EDGE_WORKERS). */
  const edgePids = () => [tg.edge.pid, ...childPids(tg.edge.pid)];
  function cpuSnapshot() {
    return {
      edge: edgePids().reduce((a, p) => a + cpuSeconds(p), 0),
      controlPlane: cpuSeconds(tg.controlPlane.pid),
      nats: natsPid === undefined ? 0 : cpuSeconds(natsPid),
      nginx: nginxPids().reduce((a, p) => a + cpuSeconds(p), 0),
      nodeProxy: cpuSeconds(nodeProxy.pid),
      sink: cpuSeconds(sink.pid),
      client: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      wrk: reapedChildrenCpuSeconds(),
      machine: machineBusyCpuSeconds(),
    };
  }
  /** RSS of the edge's processes: per process, the largest, and the sum (`read` = rssMiB or peakRssMiB). */
  function edgeRss(read) {
    const per = edgePids().map((p) => Math.round(read(p)));
    const key = read === peakRssMiB ? "peak" : "current";
    return { [`${key}MiB`]: Math.max(...per), [`${key}SumMiB`]: per.reduce((a, b) => a + b, 0), perProcessMiB: per };
  }
  function cpuDelta(a, b) {
    const out = {};
    let ours = 0;
    for (const k of Object.keys(a)) {
      out[k] = Math.round((b[k] - a[k]) * 100) / 100;
      if (k !== "machine") ours += b[k] - a[k];
    }
    // CPU used by processes that are not part of this benchmark (other jobs on the machine).
    out.foreign = Math.max(0, Math.round((out.machine - ours) * 100) / 100);
    return out;
  }

  /** Waits until the control plane has indexed the audit backlog (its CPU goes quiet). */
  async function waitControlPlaneIdle(maxS = 60) {
    const t0 = Date.now();
    for (;;) {
      const a = cpuSeconds(tg.controlPlane.pid);
      await new Promise((r) => setTimeout(r, 500));
      if (cpuSeconds(tg.controlPlane.pid) - a < 0.05 || Date.now() - t0 > maxS * 1000) break;
    }
    return (Date.now() - t0) / 1000;
  }

  const allVariants = [
    { name: "direct", describe: "wrk/client straight to nginx (PUT: straight to the sink)" },
    { name: "nginx-proxy", describe: "nginx reverse proxy (keepalive upstream, no request/response buffering)" },
    { name: "node-proxy", describe: "bare Node.js pass-through proxy (keep-alive agent, pipe both ways)" },
    {
      name: "tollgate",
      describe: "Tollgate edge: SigV4 verify, classify, decide, re-sign, forward, audit to JetStream",
    },
  ];
  const wanted = new Set(args.variants.split(","));
  const variants = allVariants.filter((v) => wanted.has(v.name));
  const workloads = args.workloads === "" ? Object.keys(WORKLOADS) : args.workloads.split(",");
  for (const w of workloads) if (!(w in WORKLOADS)) throw new Error(`unknown workload ${w}`);
  function portOf(variant, kind) {
    if (variant === "direct") return kind === "put" ? ports.sink : ports.origin;
    if (variant === "nginx-proxy") return ports.proxy;
    if (variant === "node-proxy") return ports.node;
    return edgePort();
  }
  const credentialFor = (kind) => tg.credentials[kind === "put" ? "bench-sink" : "bench"];

  /** Sends one raw request and returns the status line (sanity check before measuring). */
  async function probe(port, raw) {
    const { connect } = await import("node:net");
    return new Promise((resolveProbe, reject) => {
      const s = connect(port, "127.0.0.1", () => s.write(raw));
      let got = "";
      s.on("data", (d) => {
        got += d.toString();
        if (got.includes("\r\n\r\n")) {
          s.destroy();
          resolveProbe(got);
        }
      });
      s.on("error", reject);
      s.setTimeout(5000, () => {
        s.destroy();
        reject(new Error("probe timed out"));
      });
    });
  }

  async function wrk(port, conns, seconds, requestFile) {
    const { stdout } = await run(
      WRK,
      [
        `-t${Math.min(THREADS, conns)}`,
        `-c${conns}`,
        `-d${seconds}s`,
        "--timeout",
        "5s",
        "-s",
        join(BENCH, "wrk-replay.lua"),
        `http://127.0.0.1:${port}`,
        "--",
        requestFile,
      ],
      { maxBuffer: 1 << 20 },
    );
    const line = stdout.split("\n").find((l) => l.startsWith("WRKJSON "));
    if (line === undefined) throw new Error(`wrk printed no summary:\n${stdout}`);
    return JSON.parse(line.slice(8));
  }

  result = {
    startedAt: new Date(started).toISOString(),
    machine: {
      nproc: availableParallelism(),
      cpu: cpus()[0]?.model ?? "",
      node: process.version,
      nginx: (await run(NGINX, ["-v"]).catch((e) => e)).stderr?.trim() ?? "",
      loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
      /** What the edge and the node proxy were started with. */
      glibcTunables: (await edgeLaunchEnv({ ...process.env })).GLIBC_TUNABLES ?? "",
      /** Edge settings the bench passes through from its own environment. */
      edgeObjectDigests: process.env.TOLLGATE_EDGE_OBJECT_DIGESTS ?? "on",
      edgeWorkers: process.env.TOLLGATE_EDGE_WORKERS ?? "default (cores - 1)",
    },
    settings: {
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      conns: CONNS,
      threads: THREADS,
      sizeBytes: SIZE,
      chunkBytes: CHUNK,
      repeat: REPEAT,
    },
    variants: Object.fromEntries(variants.map((v) => [v.name, v.describe])),
    small: [],
    large: [],
    rss: { atStart: edgeRss(rssMiB) },
    auditEvents: {},
    profile: undefined,
    targets: TARGETS,
    verdicts: [],
  };
  let tollgateRequests = 0;

  // ---------------------------------------------------------------- small requests
  if (args.only !== "large") {
    result.durableCommitMs = await durableCommitMs(dir);
    for (const p of edgePids()) resetPeakRss(p);
    for (const workload of workloads) {
      for (const v of variants) {
        const port = portOf(v.name, "small");
        const file = join(dir, `${workload}-${v.name}.lua`);
        const reqs = await writeRequestFile({
          workload,
          credential: credentialFor("small"),
          host: `127.0.0.1:${port}`,
          region: REGION,
          count: Number(args.requests),
          file,
        });
        const head = await probe(port, reqs[0]);
        if (!head.startsWith("HTTP/1.1 200")) throw new Error(`${v.name} ${workload}: probe answered\n${head}`);
        if (v.name === "tollgate") {
          tollgateRequests++;
          result.rss.afterFirstRequest ??= { ...edgeRss(rssMiB), workload };
        }
        const warm = await wrk(port, Math.max(...CONNS), WARMUP_S, file);
        if (v.name === "tollgate") tollgateRequests += warm.requests;
        for (const conns of CONNS) {
          const before = cpuSnapshot();
          const r = await wrk(port, conns, DURATION_S, file);
          const cpu = cpuDelta(before, cpuSnapshot());
          if (v.name === "tollgate") tollgateRequests += r.requests;
          const rps = r.requests / (r.duration_us / 1e6);
          const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
          const row = {
            workload,
            variant: v.name,
            conns,
            rps: Math.round(rps),
            p50Ms: r.latency_us.p50 / 1000,
            p99Ms: r.latency_us.p99 / 1000,
            p999Ms: r.latency_us.p999 / 1000,
            errors,
            errorDetail: r.errors,
            requests: r.requests,
            cpuSeconds: cpu,
          };
          const own = { "node-proxy": cpu.nodeProxy, tollgate: cpu.edge, "nginx-proxy": undefined, direct: undefined }[
            v.name
          ];
          if (own !== undefined) row.proxyCpuUsPerRequest = Math.round((own / r.requests) * 1e6);
          result.small.push(row);
          log(
            `small ${workload.padEnd(18)} ${v.name.padEnd(12)} c=${String(conns).padStart(3)}  ${String(row.rps).padStart(6)} req/s  p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms${row.proxyCpuUsPerRequest !== undefined ? `  proxy CPU ${row.proxyCpuUsPerRequest} µs/req` : ""}  foreign CPU ${cpu.foreign} s${errors > 0 ? `  ERRORS ${JSON.stringify(r.errors)}` : ""}`,
          );
        }
        if (v.name === "tollgate") {
          const waited = await waitControlPlaneIdle();
          result.small.at(-1).controlPlaneCatchUpS = waited;
          log(`      control plane indexed the audit backlog ${waited.toFixed(1)} s after the run`);
        }
      }
    }
    result.rss.smallRequests = edgeRss(peakRssMiB);
  }

  // ---------------------------------------------------------------- large transfers
  if (args.only !== "small") {
    result.sha256CpuSecondsPerGiB = sha256CpuSecondsPerGiB();
    const payload = makePayload(CHUNK);
    const transfers = args.transfers === "" ? undefined : new Set(args.transfers.split(","));
    const cases = [
      { kind: "get", mode: "get" },
      ...Object.keys(PUT_MODES).map((mode) => ({ kind: "put", mode })),
    ].filter((c) => transfers === undefined || transfers.has(c.mode));
    for (const c of cases) {
      for (const p of edgePids()) resetPeakRss(p);
      for (const v of variants) {
        const port = portOf(v.name, c.kind);
        const runs = [];
        let refused;
        for (let i = 0; i < REPEAT && refused === undefined; i++) {
          const before = cpuSnapshot();
          const r =
            c.kind === "get"
              ? await timedGet({ port, credential: credentialFor("get"), region: REGION, size: SIZE })
              : await timedPut({
                  port,
                  credential: credentialFor("put"),
                  region: REGION,
                  size: SIZE,
                  mode: c.mode,
                  payload,
                });
          const cpu = cpuDelta(before, cpuSnapshot());
          if (v.name === "tollgate") tollgateRequests++;
          if (r.status !== 200) {
            refused = r;
            break;
          }
          runs.push({ ...r, cpuSeconds: cpu });
        }
        const row = { transfer: c.mode === "get" ? "GET" : `PUT ${c.mode}`, variant: v.name };
        if (refused !== undefined) {
          const notImplemented = refused.status === 501;
          row.status = notImplemented ? "not supported yet" : `refused ${refused.status}`;
          row.detail = refused.body;
          if (!notImplemented) log(`large ${row.transfer} ${v.name}: HTTP ${refused.status}\n${refused.body}`);
        } else {
          const best = runs.reduce((a, b) => (b.mibPerS > a.mibPerS ? b : a));
          row.status = "ok";
          row.mibPerS = Math.round(best.mibPerS);
          row.allMibPerS = runs.map((r) => Math.round(r.mibPerS));
          row.seconds = Math.round(best.seconds * 1000) / 1000;
          row.cpuSeconds = best.cpuSeconds;
          if (c.kind === "put") {
            row.upstreamReceivedBytes = best.receivedUpstream;
            row.sentBytes = best.sentBytes;
          }
        }
        result.large.push(row);
        log(
          `large ${row.transfer.padEnd(22)} ${v.name.padEnd(12)} ${row.status === "ok" ? `${String(row.mibPerS).padStart(5)} MiB/s (${row.allMibPerS.join(", ")})` : row.status}`,
        );
      }
      result.rss[c.mode === "get" ? "GET" : `PUT ${c.mode}`] = edgeRss(peakRssMiB);
    }
  }
  result.edgeLog = { ...tg.edge.counts };
  result.edgeBuild = {
    repo: REPO,
    gitHead: (await run("git", ["-C", REPO, "rev-parse", "HEAD"]).catch(() => ({ stdout: "" }))).stdout.trim(),
    uncommittedChanges: (await run("git", ["-C", REPO, "status", "--porcelain"]).catch(() => ({ stdout: "" }))).stdout
      .split("\n")
      .filter((l) => l.includes("edge-agent/") || l.includes("sdk/")).length,
    measured: tg.edge.build,
  };
  result.rss.afterRun = edgeRss(rssMiB);
  // Largest single edge process, and the edge's processes together (primary + workers).
  result.rss.peakMiB = Math.max(...Object.values(result.rss).map((r) => r.peakMiB ?? 0));
  result.rss.peakSumMiB = Math.max(...Object.values(result.rss).map((r) => r.peakSumMiB ?? 0));

  try {
    result.auditEvents = { tollgateRequests, storedInStream: await auditEventCount(tg) };
  } catch (err) {
    result.auditEvents = { tollgateRequests, error: err.message };
  }

  // ---------------------------------------------------------------- verdicts
  const byKey = (rows, keyFn) => {
    const groups = new Map();
    for (const r of rows) groups.set(keyFn(r), [...(groups.get(keyFn(r)) ?? []), r]);
    return Object.fromEntries(groups);
  };
  const ratios = { small: [], large: [] };
  result.budget = [];
  result.transferBudget = [];
  for (const rows of Object.values(byKey(result.small, (r) => `${r.workload}|${r.conns}`))) {
    const node = rows.find((r) => r.variant === "node-proxy");
    const t = rows.find((r) => r.variant === "tollgate");
    const ng = rows.find((r) => r.variant === "nginx-proxy");
    const d = rows.find((r) => r.variant === "direct");
    if (node === undefined || t === undefined) continue;
    const row = {
      workload: t.workload,
      conns: t.conns,
      tollgateVsNode: Math.round((t.rps / node.rps) * 100) / 100,
      addedP99Ms: Math.round((t.p99Ms - node.p99Ms) * 100) / 100,
      nodeVsDirect: d ? Math.round((node.rps / d.rps) * 100) / 100 : undefined,
      nginxProxyVsNode: ng ? Math.round((ng.rps / node.rps) * 100) / 100 : undefined,
    };
    ratios.small.push(row);
    result.budget.push(cpuBudget(t, node, result.machine.nproc));
    result.verdicts.push({
      target: `small ${row.workload} c=${row.conns}: throughput >= ${TARGETS.smallThroughputRatio}x node proxy`,
      value: row.tollgateVsNode,
      met: row.tollgateVsNode >= TARGETS.smallThroughputRatio && t.errors === 0,
    });
    result.verdicts.push({
      target: `small ${row.workload} c=${row.conns}: added p99 <= ${TARGETS.addedP99Ms} ms`,
      value: row.addedP99Ms,
      met: row.addedP99Ms <= TARGETS.addedP99Ms,
    });
  }
  for (const rows of Object.values(byKey(result.large, (r) => r.transfer))) {
    const node = rows.find((r) => r.variant === "node-proxy");
    const t = rows.find((r) => r.variant === "tollgate");
    if (node === undefined || t === undefined) continue;
    const ratio =
      t.status === "ok" && node.status === "ok" ? Math.round((t.mibPerS / node.mibPerS) * 100) / 100 : undefined;
    ratios.large.push({ transfer: t.transfer, tollgateVsNode: ratio, status: t.status });
    if (ratio !== undefined) result.transferBudget.push(transferBudget(t, node, result));
    result.verdicts.push({
      target: `${t.transfer}: throughput >= ${TARGETS.largeThroughputRatio}x node proxy`,
      value: ratio ?? t.status,
      met:
        ratio === undefined
          ? t.status === "not supported yet"
            ? "n/a"
            : false
          : ratio >= TARGETS.largeThroughputRatio,
    });
  }
  if (result.rss.peakMiB > 0) {
    result.verdicts.push({
      target: `edge peak RSS < ${TARGETS.peakRssMiB} MiB (largest process)`,
      value: Math.round(result.rss.peakMiB),
      met: result.rss.peakMiB < TARGETS.peakRssMiB,
    });
    result.verdicts.push({
      target: `edge peak RSS < ${TARGETS.peakRssMiB} MiB (all edge processes together)`,
      value: Math.round(result.rss.peakSumMiB),
      met: result.rss.peakSumMiB < TARGETS.peakRssMiB,
    });
  }
  result.ratios = ratios;

  // ---------------------------------------------------------------- profile (on a missed small target)
  const smallMissed = result.verdicts.some((v) => v.target.startsWith("small") && v.met === false);
  if (args.only !== "large" && !args["no-profile"] && (args.profile || smallMissed)) {
    log(`bench: profiling the edge (node --cpu-prof) at c=${Math.max(...CONNS)}, one edge process per workload`);
    result.profile = {};
    for (const workload of workloads) {
      const profDir = join(dir, `profile-${workload}`);
      mkdirSync(profDir);
      await startEdge(tg, ["--cpu-prof", `--cpu-prof-dir=${profDir}`]);
      const port = edgePort();
      const file = join(dir, `${workload}-profile.lua`);
      await writeRequestFile({
        workload,
        credential: credentialFor("small"),
        host: `127.0.0.1:${port}`,
        region: REGION,
        count: 2000,
        file,
      });
      // Warm up first so that start-up (module loading, model indexing) is a small share.
      await wrk(port, Math.max(...CONNS), WARMUP_S, file);
      const r = await wrk(port, Math.max(...CONNS), Math.min(DURATION_S, 8), file);
      await stopChild(tg.edge);
      Object.assign(result.profile, keepProfiles(profDir, workload, { requests: r.requests }));
    }
  }
  const PROFILE_TRANSFER = args["profile-transfer"];
  const transferMissed = result.verdicts.some(
    (v) => v.target.startsWith(PROFILE_TRANSFER === "get" ? "GET" : `PUT ${PROFILE_TRANSFER}`) && v.met === false,
  );
  if (args.only !== "small" && !args["no-profile"] && (args.profile || transferMissed)) {
    log(`bench: profiling the edge (node --cpu-prof) during one 1 GiB ${PROFILE_TRANSFER} transfer`);
    const profDir = join(dir, "profile-transfer");
    mkdirSync(profDir);
    await startEdge(tg, ["--cpu-prof", `--cpu-prof-dir=${profDir}`]);
    const r =
      PROFILE_TRANSFER === "get"
        ? await timedGet({ port: edgePort(), credential: credentialFor("get"), region: REGION, size: SIZE })
        : await timedPut({
            port: edgePort(),
            credential: credentialFor("put"),
            region: REGION,
            size: SIZE,
            mode: PROFILE_TRANSFER,
            payload: makePayload(CHUNK),
          });
    await stopChild(tg.edge);
    if (r.status === 200) {
      result.profile ??= {};
      Object.assign(
        result.profile,
        keepProfiles(profDir, `${PROFILE_TRANSFER === "get" ? "get" : `put-${PROFILE_TRANSFER}`}`, {
          requests: 1,
          mibPerS: Math.round(r.mibPerS),
        }),
      );
    }
  }

  // ---------------------------------------------------------------- clean-up and report
} finally {
  await cleanUp();
}
result.elapsedS = Math.round((Date.now() - started) / 1000);

mkdirSync(join(BENCH, "results"), { recursive: true });
const out = join(BENCH, "results", `${result.startedAt.replace(/[:.]/g, "-")}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(renderReport(result));
process.stdout.write(`\nresults: ${resolve(out)}  (${result.elapsedS} s)\n`);

/**
 * Summarizes every `.cpuprofile` in `profDir` (one per edge process: the primary and each
 * worker), busiest first, keeps the files in bench/results/ and returns them keyed by label.
 */
function keepProfiles(profDir, label, extra) {
  const out = {};
  const profiles = readdirSync(profDir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => {
      const text = readFileSync(join(profDir, f), "utf8");
      const summary = summarizeCpuProfile(JSON.parse(text), { repo: REPO, top: 25 });
      return { text, summary };
    })
    .sort((a, b) => b.summary.totalMs - a.summary.totalMs);
  mkdirSync(join(BENCH, "results"), { recursive: true });
  profiles.forEach(({ text, summary }, i) => {
    const key = i === 0 ? label : `${label}, edge process ${i + 1} of ${profiles.length}`;
    const file = join(BENCH, "results", `edge-${label}-${i + 1}-${result.startedAt.replace(/[:.]/g, "-")}.cpuprofile`);
    writeFileSync(file, text);
    out[key] = { file, ...extra, ...summary };
  });
  return out;
}

/** µs of CPU per request of one process group in a small-request row. */
function usPerRequest(row, key) {
  return Math.round((1e6 * (row.cpuSeconds[key] ?? 0)) / row.requests);
}

/**
 * What the throughput target leaves the edge on this machine: at `ratio` × the node proxy's req/s,
 * all processes together may use `nproc` cores, so `nproc × 1e6 / targetRps` µs of CPU per request;
 * the control plane, NATS, nginx and wrk used what they used per Tollgate request in the same run
 * (they do not get cheaper when the edge does), and the rest is the edge's. One edge process can
 * also use at most one core: `1e6 / targetRps`.
 */
function cpuBudget(t, node, nproc, ratio = TARGETS.smallThroughputRatio) {
  const targetRps = node.rps * ratio;
  const others = ["controlPlane", "nats", "nginx", "wrk", "client"].reduce((a, k) => a + usPerRequest(t, k), 0);
  const machineUs = Math.round((nproc * 1e6) / targetRps);
  return {
    workload: t.workload,
    conns: t.conns,
    targetRps: Math.round(targetRps),
    perRequestUs: {
      edge: usPerRequest(t, "edge"),
      controlPlane: usPerRequest(t, "controlPlane"),
      nats: usPerRequest(t, "nats"),
      nginx: usPerRequest(t, "nginx"),
      wrk: usPerRequest(t, "wrk") + usPerRequest(t, "client"),
      machine: usPerRequest(t, "machine"),
    },
    nodeProxyRun: {
      nodeProxy: usPerRequest(node, "nodeProxy"),
      nginx: usPerRequest(node, "nginx"),
      wrk: usPerRequest(node, "wrk") + usPerRequest(node, "client"),
      machine: usPerRequest(node, "machine"),
    },
    machineUsAtTarget: machineUs,
    othersUs: others,
    edgeBudgetUs: machineUs - others,
    edgeBudgetOneProcessUs: Math.min(machineUs - others, Math.round(1e6 / targetRps)),
    busyCores: Math.round((t.cpuSeconds.machine / (t.requests / t.rps)) * 100) / 100,
  };
}

/**
 * Latency of one durable journal-sized append (2.4 KiB, `O_DSYNC`, through the thread pool as
 * the edge's journal writes), p50 and p99 of 500, on the file system of the bench's
 * TOLLGATE_HOME, measured while the machine is idle. The edge makes every call's intent durable
 * before forwarding it, so at one connection each call waits for at least one such commit.
 */
async function durableCommitMs(inDir) {
  const path = join(inDir, "commit-probe.wal");
  const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_DSYNC);
  const buf = Buffer.alloc(2400, 1);
  const times = [];
  try {
    for (let i = 0; i < 500; i++) {
      const t0 = performance.now();
      await promisify(write)(fd, buf);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  times.sort((a, b) => a - b);
  const at = (q) => Math.round(times[Math.floor(q * (times.length - 1))] * 1000) / 1000;
  return { p50: at(0.5), p99: at(0.99) };
}

/** CPU seconds this process needs to SHA-256 one GiB (from a 64 KiB buffer, as the edge hashes bodies). */
function sha256CpuSecondsPerGiB() {
  const buf = Buffer.alloc(64 * 1024, 7);
  const before = process.cpuUsage();
  for (let i = 0; i < 4096; i++) createHash("sha256").update(buf).digest();
  const used = process.cpuUsage(before);
  return Math.round(((used.user + used.system) / 1e6) * 4 * 100) / 100;
}

/**
 * What the 0.9x transfer target leaves the edge on this machine, per GiB: at 0.9 × the node
 * proxy's GiB/s, all processes together may use `nproc` CPU-seconds per second; everything but
 * the proxy (client, upstream or sink, the rest of the machine) used what it used per GiB in the
 * node-proxy run, and the rest is the edge's. And the best ratio a "floor" edge could reach, one
 * that did nothing but the node proxy's pass-through plus the SHA-256 passes the call requires
 * (each chunk's signature check of a signed-chunk upload, and the object digest unless
 * TOLLGATE_EDGE_OBJECT_DIGESTS=off), with perfect use of every core: if even that is below the
 * target, the target cannot be met on this machine with these checks on.
 */
function transferBudget(t, node, r) {
  const gib = SIZE / 2 ** 30;
  const nodeGiBps = node.mibPerS / 1024;
  const nproc = r.machine.nproc;
  const othersPerGiB = Math.max(0, (node.cpuSeconds.machine - node.cpuSeconds.nodeProxy) / gib);
  const nodeProxyPerGiB = node.cpuSeconds.nodeProxy / gib;
  const digests = (r.machine.edgeObjectDigests ?? "on") === "on" ? 1 : 0;
  const shaPasses = (t.transfer === "PUT signed-chunks" ? 1 : 0) + digests;
  const floorPerGiB = nodeProxyPerGiB + shaPasses * (r.sha256CpuSecondsPerGiB ?? 0);
  const round = (x) => Math.round(x * 100) / 100;
  return {
    transfer: t.transfer,
    othersPerGiB: round(othersPerGiB),
    edgeAllowedPerGiB: round(nproc / (TARGETS.largeThroughputRatio * nodeGiBps) - othersPerGiB),
    edgeUsedPerGiB: round(t.cpuSeconds.edge / gib),
    shaPasses,
    floorPerGiB: round(floorPerGiB),
    floorBestRatio: round(Math.min(nproc / (othersPerGiB + floorPerGiB) / nodeGiBps, 9.99)),
  };
}

function proxyCpuPerGiB(row) {
  const own = { "node-proxy": "nodeProxy", tollgate: "edge", "nginx-proxy": "nginx" }[row.variant];
  if (own === undefined || row.cpuSeconds === undefined) return "";
  // nginx-proxy: nginx's CPU includes the origin's share (same workers).
  return (row.cpuSeconds[own] / (SIZE / 2 ** 30)).toFixed(2);
}

function renderReport(r) {
  const lines = [];
  const pad = (s, n) => String(s).padEnd(n);
  const lpad = (s, n) => String(s).padStart(n);
  lines.push("");
  lines.push(
    `Edge build: ${r.edgeBuild.repo} at ${r.edgeBuild.gitHead.slice(0, 10)}${r.edgeBuild.uncommittedChanges > 0 ? ` + ${r.edgeBuild.uncommittedChanges} uncommitted edge-agent/sdk files` : ""}, dist/ of ${r.edgeBuild.measured.distModified}`,
  );
  lines.push(`Tollgate bench — ${r.machine.nproc} CPUs (${r.machine.cpu}), node ${r.machine.node}, ${r.machine.nginx}`);
  lines.push("All variants, the upstream and the load generator share these CPUs.");
  lines.push(`GLIBC_TUNABLES of the edge and the node proxy: ${r.machine.glibcTunables || "(none)"}`);
  lines.push(
    `Edge: TOLLGATE_EDGE_OBJECT_DIGESTS=${r.machine.edgeObjectDigests ?? "on"}, TOLLGATE_EDGE_WORKERS=${r.machine.edgeWorkers ?? "default"}`,
  );
  const foreign = r.small.map((x) => x.cpuSeconds.foreign / DURATION_S);
  if (foreign.length > 0) {
    const avg = foreign.reduce((a, b) => a + b, 0) / foreign.length;
    lines.push(
      `Other processes on the machine used ${avg.toFixed(2)} cores on average during the small-request runs (load average at start ${r.machine.loadAverageAtStart.join(" ")})${avg > 0.3 ? " — figures are disturbed; rerun on a quiet machine" : ""}.`,
    );
  }
  if (r.small.length > 0) {
    lines.push("");
    lines.push(`Small requests (wrk, ${THREADS} threads, ${DURATION_S} s per run after a ${WARMUP_S} s warm-up)`);
    lines.push(
      `${pad("workload", 19)}${pad("conns", 6)}${pad("variant", 13)}${lpad("req/s", 8)}${lpad("p50 ms", 9)}${lpad("p99 ms", 9)}${lpad("vs node", 9)}${lpad("+p99 ms", 9)}${lpad("proxy CPU µs/req", 18)}${lpad("other load", 12)}`,
    );
    for (const row of r.small) {
      const node = r.small.find(
        (x) => x.workload === row.workload && x.conns === row.conns && x.variant === "node-proxy",
      );
      lines.push(
        `${pad(row.workload, 19)}${pad(row.conns, 6)}${pad(row.variant, 13)}${lpad(row.rps, 8)}${lpad(row.p50Ms.toFixed(2), 9)}${lpad(row.p99Ms.toFixed(2), 9)}${lpad(node ? `${(row.rps / node.rps).toFixed(2)}x` : "", 9)}${lpad(node ? (row.p99Ms - node.p99Ms).toFixed(2) : "", 9)}${lpad(row.proxyCpuUsPerRequest ?? "", 18)}${lpad(`${(row.cpuSeconds.foreign / DURATION_S).toFixed(1)} cores`, 12)}${row.errors > 0 ? `  errors ${row.errors}` : ""}`,
      );
    }
  }
  if ((r.budget ?? []).length > 0) {
    lines.push("");
    lines.push(
      `CPU per small Tollgate request, every process (µs; machine = all busy CPU / requests) and what ${TARGETS.smallThroughputRatio}x the node proxy would allow on ${r.machine.nproc} cores`,
    );
    lines.push(
      `${pad("workload", 19)}${pad("conns", 6)}${lpad("edge", 6)}${lpad("cp", 6)}${lpad("nats", 6)}${lpad("nginx", 7)}${lpad("wrk", 5)}${lpad("machine", 9)}${lpad("busy", 7)}  ${pad(`at ${TARGETS.smallThroughputRatio}x: req/s`, 17)}${lpad("all µs", 7)}${lpad("edge µs", 9)}${lpad("1 proc", 8)}   node-proxy run: proxy/machine µs`,
    );
    for (const b of r.budget) {
      const u = b.perRequestUs;
      lines.push(
        `${pad(b.workload, 19)}${pad(b.conns, 6)}${lpad(u.edge, 6)}${lpad(u.controlPlane, 6)}${lpad(u.nats, 6)}${lpad(u.nginx, 7)}${lpad(u.wrk, 5)}${lpad(u.machine, 9)}${lpad(b.busyCores.toFixed(2), 7)}  ${pad(b.targetRps, 17)}${lpad(b.machineUsAtTarget, 7)}${lpad(b.edgeBudgetUs, 9)}${lpad(b.edgeBudgetOneProcessUs, 8)}   ${b.nodeProxyRun.nodeProxy}/${b.nodeProxyRun.machine}`,
      );
    }
    lines.push(
      "  (edge µs = what the target leaves the edge after the control plane, NATS, nginx and wrk as measured; 1 proc = the same for one edge process, at most one core)",
    );
    // wrk keeps `conns` requests in flight, so mean latency = conns / throughput (Little's law):
    // a throughput gap alone adds latency, however short the edge's own path is.
    lines.push("");
    lines.push(
      `Latency that the throughput gap alone adds (Little's law: mean latency = conns / req/s) and the ratio at which it alone reaches +${TARGETS.addedP99Ms} ms`,
    );
    lines.push(
      `${pad("workload", 19)}${pad("conns", 6)}${lpad("node ms", 9)}${lpad("tollgate ms", 13)}${lpad("+ms", 7)}${lpad(`+${TARGETS.addedP99Ms} ms at`, 11)}${r.durableCommitMs ? lpad("1 commit allows", 17) : ""}`,
    );
    for (const b of r.budget) {
      const node = r.small.find((x) => x.workload === b.workload && x.conns === b.conns && x.variant === "node-proxy");
      const t = r.small.find((x) => x.workload === b.workload && x.conns === b.conns && x.variant === "tollgate");
      if (node === undefined || t === undefined) continue;
      const wn = (1000 * b.conns) / node.rps;
      const wt = (1000 * b.conns) / t.rps;
      const ratioAt = wn / (wn + TARGETS.addedP99Ms);
      // One connection: every call waits for its own durable commit at least.
      const commitBound =
        r.durableCommitMs && b.conns === 1 ? `${(wn / (wn + r.durableCommitMs.p50)).toFixed(2)}x` : "";
      lines.push(
        `${pad(b.workload, 19)}${pad(b.conns, 6)}${lpad(wn.toFixed(2), 9)}${lpad(wt.toFixed(2), 13)}${lpad((wt - wn).toFixed(2), 7)}${lpad(`${ratioAt.toFixed(2)}x`, 11)}${lpad(commitBound, 17)}`,
      );
    }
    lines.push(
      `  (below that throughput ratio the mean latency alone exceeds the node proxy's by more than ${TARGETS.addedP99Ms} ms; a p99 rarely moves less than the mean)`,
    );
    if (r.durableCommitMs) {
      lines.push(
        `  (1 commit allows: the best ratio at one connection of an edge that added nothing but one durable journal commit per call, p50 ${r.durableCommitMs.p50} ms / p99 ${r.durableCommitMs.p99} ms on this file system, measured idle)`,
      );
    }
  }
  if (r.large.length > 0) {
    lines.push("");
    lines.push(
      `Large transfers (${SIZE / 1024 / 1024} MiB, best of ${REPEAT}; aws-chunked in ${CHUNK / 1024} KiB chunks)`,
    );
    lines.push(
      `${pad("transfer", 24)}${pad("variant", 13)}${lpad("MiB/s", 8)}${lpad("vs node", 9)}${lpad("proxy CPU s/GiB", 17)}${lpad("other load", 12)}  runs`,
    );
    for (const row of r.large) {
      const node = r.large.find((x) => x.transfer === row.transfer && x.variant === "node-proxy");
      const ratio = row.status === "ok" && node?.status === "ok" ? `${(row.mibPerS / node.mibPerS).toFixed(2)}x` : "";
      lines.push(
        `${pad(row.transfer, 24)}${pad(row.variant, 13)}${lpad(row.status === "ok" ? row.mibPerS : row.status, 8)}${lpad(ratio, 9)}${lpad(proxyCpuPerGiB(row), 17)}${lpad(row.cpuSeconds ? `${(row.cpuSeconds.foreign / row.seconds).toFixed(1)} cores` : "", 12)}  ${row.allMibPerS?.join(", ") ?? ""}`,
      );
    }
  }
  if ((r.transferBudget ?? []).length > 0) {
    lines.push("");
    lines.push(
      `CPU-s per GiB: what ${TARGETS.largeThroughputRatio}x the node proxy leaves the edge on ${r.machine.nproc} cores, and the best ratio of a floor edge (node proxy + required SHA-256 passes at ${r.sha256CpuSecondsPerGiB} s/GiB each)`,
    );
    lines.push(
      `${pad("transfer", 24)}${lpad("others", 8)}${lpad(`edge at ${TARGETS.largeThroughputRatio}x`, 13)}${lpad("edge used", 11)}${lpad("SHA passes", 12)}${lpad("floor", 7)}${lpad("floor best", 12)}`,
    );
    for (const b of r.transferBudget) {
      lines.push(
        `${pad(b.transfer, 24)}${lpad(b.othersPerGiB.toFixed(2), 8)}${lpad(b.edgeAllowedPerGiB.toFixed(2), 13)}${lpad(b.edgeUsedPerGiB.toFixed(2), 11)}${lpad(b.shaPasses, 12)}${lpad(b.floorPerGiB.toFixed(2), 7)}${lpad(`${b.floorBestRatio.toFixed(2)}x`, 12)}`,
      );
    }
    lines.push(
      "  (others = all CPU but the proxy's per GiB in the node-proxy run: client, upstream or sink; floor best < target means no edge that makes these checks can reach it here)",
    );
  }
  lines.push("");
  lines.push(
    `Edge RSS right after start: ${r.rss.atStart.perProcessMiB.join(" + ")} MiB${r.rss.afterFirstRequest ? `, after its first request: ${r.rss.afterFirstRequest.perProcessMiB.join(" + ")} MiB` : ""} (primary first, then workers)`,
  );
  lines.push(
    `Edge peak RSS (VmHWM): ${Object.entries(r.rss)
      .filter(([, v]) => v.peakMiB !== undefined && typeof v === "object")
      .map(([k, v]) => `${k} ${v.perProcessMiB.join(" + ")} MiB`)
      .join(", ")}; largest process ${Math.round(r.rss.peakMiB)} MiB, all together ${Math.round(r.rss.peakSumMiB)} MiB`,
  );
  lines.push(
    `Audit events: ${r.auditEvents.storedInStream ?? r.auditEvents.error} stored for ~${r.auditEvents.tollgateRequests} Tollgate requests`,
  );
  lines.push(
    `Edge log: ${r.edgeLog.warn} warnings, ${r.edgeLog.error} errors${r.edgeLog.lastProblem ? `; last: ${r.edgeLog.lastProblem}` : ""}`,
  );
  lines.push("");
  lines.push("Targets");
  for (const v of r.verdicts)
    lines.push(`  ${v.met === true ? "met   " : v.met === false ? "MISSED" : "n/a   "} ${v.target}: ${v.value}`);
  for (const [workload, p] of Object.entries(r.profile ?? {})) {
    lines.push("");
    lines.push(`Edge CPU profile, ${workload} (${p.requests} requests, ${p.totalMs} ms of samples): ${p.file}`);
    lines.push("  self time by area:");
    for (const a of p.byArea.slice(0, 12)) lines.push(`    ${lpad(a.pct.toFixed(1), 5)}%  ${a.area}`);
    lines.push("  self time by function:");
    for (const f of p.topFunctions.slice(0, 15)) lines.push(`    ${lpad(f.pct.toFixed(1), 5)}%  ${f.name}  ${f.where}`);
    lines.push("  inclusive time of edge, sdk, signer and JetStream functions:");
    for (const f of p.ourInclusive.slice(0, 20)) lines.push(`    ${lpad(f.pct.toFixed(1), 5)}%  ${f.name}  ${f.where}`);
  }
  return `${lines.join("\n")}\n`;
}
