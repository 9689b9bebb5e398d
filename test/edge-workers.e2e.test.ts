// Edge worker processes (TOLLGATE_EDGE_WORKERS): calls are served by several processes, the
// primary journals and ships for all of them, and the edge keeps one unbroken chain under its
// name. A worker that dies takes the edge down (fail-stop); after a restart the chain goes on.
import { readdirSync, readFileSync } from "node:fs";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, runProcess } from "./support/dev-instance.js";
import {
  alertsFor,
  type Credential,
  duplicates,
  readStream,
  runLoad,
  Stack,
  s3Client,
  waitForCount,
} from "./support/fault-stack.js";
import { NatsServerProcess } from "./support/nats-server-process.js";

const WORKERS = 3;
const N = 240;

let nats: NatsServerProcess;
let moto: MotoServer;

beforeAll(async () => {
  [nats, moto] = await Promise.all([NatsServerProcess.start(), startMotoServer({ verifySignatures: true })]);
});

afterAll(async () => {
  await moto?.close();
  await nats?.dispose();
});

/** Direct children of `pid` and their CPU seconds (user + system) from /proc. */
function children(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === pid) out.set(Number(d), (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // gone
    }
  }
  return out;
}

describe(`edge with ${WORKERS} worker processes`, () => {
  const stack = new Stack(() => ({ natsUrl: nats.url, moto }));
  stack.edgeEnv = { TOLLGATE_EDGE_WORKERS: String(WORKERS) };
  afterAll(() => stack.stop());

  it("serves calls from every worker, records each once, on one chain under the edge's name; fail-stop on a dead worker", async () => {
    await stack.start();
    const edgePid = stack.edge.child.pid as number;
    const before = children(edgePid);
    expect(before.size).toBe(WORKERS);

    const principal = `workers-${stack.names.id}`;
    const cred: Credential = await stack.issue(principal);
    const s3 = s3Client(stack.edgeUrl, cred);
    const bucket = `workers-${stack.names.id}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const calls = await runLoad(s3, bucket, "k", N, () => undefined);
    expect(calls.filter((c) => c.status !== 200)).toEqual([]);

    // Every worker did part of the work (the load's keep-alive connections are spread over them).
    const after = children(edgePid);
    const used = [...before].map(([pid, cpu]) => (after.get(pid) ?? 0) - cpu);
    expect(
      used.filter((s) => s >= 0.05),
      `CPU seconds per worker: ${used.join(", ")}`,
    ).toHaveLength(WORKERS);

    await waitForCount(() => stack.query(principal), N, 60_000);
    const events = await stack.query(principal);
    expect(events).toHaveLength(N);
    expect(duplicates(events.map((e) => e.eventId))).toEqual([]);
    expect(new Set(events.map((e) => e.requestId))).toEqual(new Set(calls.map((c) => c.requestId)));

    const chain = (await readStream(nats.url, stack.names.stream)).filter((e) => e.tollgate?.edge === stack.edgeName);
    expect(chain.map((e) => e.tollgate?.sequence)).toEqual(chain.map((_, i) => BigInt(i + 1)));
    expect(chain.length).toBeGreaterThanOrEqual(N + 1);

    // Fail-stop: a worker killed outright takes the whole edge down ...
    const exited = new Promise<number | null>((resolve) => stack.edge.child.once("exit", (code) => resolve(code)));
    process.kill([...after.keys()][0] as number, "SIGKILL");
    expect(await exited).not.toBe(0);
    // ... and after a restart the chain continues where it stopped.
    await stack.startEdge();
    const more = await runLoad(s3, bucket, "after", 20, () => undefined);
    expect(more.filter((c) => c.status !== 200)).toEqual([]);
    await waitForCount(() => stack.query(principal), N + 20, 60_000);

    const all = (await readStream(nats.url, stack.names.stream)).filter((e) => e.tollgate?.edge === stack.edgeName);
    expect(duplicates(all.map((e) => e.eventId))).toEqual([]);
    expect(all.map((e) => e.tollgate?.sequence)).toEqual(all.map((_, i) => BigInt(i + 1)));
    const verify = await runProcess(process.execPath, [CLI, "audit", "verify"], stack.cliEnv);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain(`edge ${stack.edgeName}:`);
    expect(await alertsFor(stack.cliEnv, stack.edgeName)).toEqual([]);
  });
});
