// Issue #4: a 3-node NATS cluster with an R3 audit stream loses one node (the stream leader,
// SIGKILLed) mid-load: every call still succeeds, exactly one event per call reaches the index,
// no event is duplicated in the stream, and the chains verify.
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { AuditEvent } from "@tollgate/proto";
import { type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, runProcess } from "./support/dev-instance.js";
import { alertsFor, duplicates, readStream, runLoad, Stack, s3Client, waitForCount } from "./support/fault-stack.js";
import { NatsCluster } from "./support/nats-cluster.js";

const N = 300;

let cluster: NatsCluster;
let moto: MotoServer;

beforeAll(async () => {
  [cluster, moto] = await Promise.all([NatsCluster.start(3), startMotoServer({ verifySignatures: true })]);
});

afterAll(async () => {
  await moto?.close();
  await cluster?.dispose();
});

async function streamCluster(stream: string): Promise<{ leader?: string; replicas: string[]; offline: string[] }> {
  const nc = await connect({ servers: cluster.urls.split(",") });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    const replicas = info.cluster?.replicas ?? [];
    return {
      leader: info.cluster?.leader,
      replicas: replicas.map((r) => r.name),
      offline: replicas.filter((r) => r.offline === true).map((r) => r.name),
    };
  } finally {
    await nc.close();
  }
}

function objectKeyOf(e: AuditEvent, bucket: string): string {
  const arn = e.resources.find((r) => r.type === "AWS::S3::Object")?.arn ?? "";
  return arn.startsWith(`arn:aws:s3:::${bucket}/`) ? arn.slice(`arn:aws:s3:::${bucket}/`.length) : "";
}

describe("3-node NATS cluster, R3 audit stream, stream leader SIGKILLed mid-load", () => {
  const stack = new Stack(() => ({ natsUrl: cluster.urls, moto }));
  stack.controlPlaneEnv = { TOLLGATE_AUDIT_REPLICAS: "3" };
  afterAll(() => stack.stop());

  it("answers every call and records each exactly once on verifiable chains", async () => {
    await stack.start();
    const before = await streamCluster(stack.names.stream);
    expect(before.leader).toMatch(/^n[012]$/);
    expect(before.replicas).toHaveLength(2);
    expect(new Set([before.leader, ...before.replicas]).size).toBe(3);

    const principal = `cluster-${stack.names.id}`;
    const s3 = s3Client(stack.edgeUrl, await stack.issue(principal));
    const bucket = `cluster-${stack.names.id}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));

    let killed: Promise<void> | undefined;
    let killedAt = 0;
    const calls = await runLoad(s3, bucket, "k", N, (done) => {
      if (done === 100 && killed === undefined) {
        // Not awaited: the load goes on while the cluster elects a new stream leader.
        killed = cluster.kill(before.leader ?? "").then(() => {
          killedAt = Date.now();
        });
      }
    });
    await killed;
    expect(calls.filter((c) => c.status !== 200)).toEqual([]);
    expect(calls).toHaveLength(N);

    const catchUpMs = await waitForCount(() => stack.query(principal), N, 60_000);
    await sleep(1000);
    const events = await stack.query(principal);
    expect(events).toHaveLength(N);
    expect(duplicates(events.map((e) => e.eventId))).toEqual([]);
    const keys = events.map((e) => objectKeyOf(e, bucket)).sort();
    expect(keys).toEqual(calls.map((c) => c.key).sort());
    const byKey = new Map(events.map((e) => [objectKeyOf(e, bucket), e]));
    const mismatched = calls.filter((c) => {
      const e = byKey.get(c.key);
      return e?.eventName !== "PutObject" || e.requestId !== c.requestId || e.tollgate?.outcome !== "completed";
    });
    expect(mismatched.map((c) => c.key)).toEqual([]);

    const after = await streamCluster(stack.names.stream);
    expect(after.leader).toMatch(/^n[012]$/);
    expect(after.leader).not.toBe(before.leader);

    const raw = (await readStream(cluster.urls, stack.names.stream)).filter(
      (e) => e.userIdentity?.principalId === principal && e.eventName === "PutObject",
    );
    expect(duplicates(raw.map((e) => e.eventId))).toEqual([]);
    expect(raw).toHaveLength(N);
    const edgeRaw = (await readStream(cluster.urls, stack.names.stream)).filter(
      (e) => e.tollgate?.edge === stack.edgeName,
    );
    expect(edgeRaw.map((e) => e.tollgate?.sequence)).toEqual(edgeRaw.map((_, i) => BigInt(i + 1)));

    const verify = await runProcess(process.execPath, [CLI, "audit", "verify"], stack.cliEnv);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain(`edge ${stack.edgeName}:`);
    expect(await alertsFor(stack.cliEnv, stack.edgeName)).toEqual([]);
    console.info(
      `[audit-cluster] killed stream leader ${before.leader} (new leader ${after.leader}) after 100 of ${N} calls; ` +
        `${events.length} events, all indexed ${catchUpMs} ms after the load (${Date.now() - killedAt} ms since the kill)`,
    );
  });
});
