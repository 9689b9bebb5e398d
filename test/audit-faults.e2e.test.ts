// Issue #4: the audit trail survives faults. Every test runs its own nats-server (SIGKILLed and
// restarted at will); in every case each call that reached AWS has exactly one event, no event
// is duplicated in the stream, and the chains verify.
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import type { AuditEvent } from "@tollgate/proto";
import { type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryAll } from "./support/audit.js";
import { CLI, type DevInstance, runProcess, startDev } from "./support/dev-instance.js";
import {
  alertsFor,
  type CallResult,
  CONCURRENCY,
  type Credential,
  duplicates,
  readStream,
  runLoad,
  Stack,
  s3Client,
  waitForCount,
} from "./support/fault-stack.js";
import { NatsServerProcess } from "./support/nats-server-process.js";

const N = 300;

let nats: NatsServerProcess;
let moto: MotoServer;

beforeAll(async () => {
  [nats, moto] = await Promise.all([NatsServerProcess.start(), startMotoServer({ verifySignatures: true })]);
});

afterAll(async () => {
  await moto?.close();
  await nats?.dispose();
});

function objectKeyOf(e: AuditEvent, bucket: string): string {
  const arn = e.resources.find((r) => r.type === "AWS::S3::Object")?.arn ?? "";
  return arn.startsWith(`arn:aws:s3:::${bucket}/`) ? arn.slice(`arn:aws:s3:::${bucket}/`.length) : "";
}

/**
 * Expectations common to every fault: exactly one event per answered call, matching it (by object
 * key, eventName, x-amz-request-id); at most one per call cut off, marked as interrupted unless
 * its completion was journaled; no event for anything else.
 */
function expectOneEventPerCall(
  events: AuditEvent[],
  calls: CallResult[],
  bucket: string,
  { edgeKilled = false } = {},
): void {
  expect(duplicates(events.map((e) => e.eventId))).toEqual([]);
  const byKey = new Map<string, AuditEvent[]>();
  for (const e of events) {
    const k = objectKeyOf(e, bucket);
    byKey.set(k, [...(byKey.get(k) ?? []), e]);
  }
  const problems: string[] = [];
  for (const c of calls) {
    const evs = byKey.get(c.key) ?? [];
    const e = evs[0];
    if (c.status !== undefined) {
      if (evs.length !== 1 || e === undefined) {
        problems.push(`${c.key} (HTTP ${c.status}, request id ${c.requestId}): ${evs.length} events`);
        continue;
      }
      if (e.eventName !== "PutObject") problems.push(`${c.key}: eventName ${e.eventName}`);
      // A call whose response was sent just before the edge was killed, but whose completion was
      // not yet journaled, is shipped from its intent as interrupted (see the report of issue #4).
      if (edgeKilled && e.tollgate?.outcome === "unknown" && e.errorCode === "EdgeInterrupted") continue;
      if (c.status === 200 && e.requestId !== c.requestId) {
        problems.push(`${c.key}: requestID "${e.requestId}" != x-amz-request-id "${c.requestId}"`);
      }
      if (c.status === 200 && e.tollgate?.outcome !== "completed") {
        problems.push(`${c.key}: outcome "${e.tollgate?.outcome}"`);
      }
    } else {
      if (evs.length > 1) problems.push(`interrupted ${c.key}: ${evs.length} events`);
      if (e !== undefined && e.tollgate?.outcome !== "completed") {
        if (e.tollgate?.outcome !== "unknown" || e.errorCode !== "EdgeInterrupted") {
          problems.push(`interrupted ${c.key}: outcome "${e.tollgate?.outcome}", errorCode ${e.errorCode}`);
        }
      }
    }
  }
  const callKeys = new Set(calls.map((c) => c.key));
  for (const k of byKey.keys()) if (!callKeys.has(k)) problems.push(`event for unknown key "${k}"`);
  expect(problems).toEqual([]);
}

describe("NATS stopped and restarted during load", () => {
  let dev: DevInstance | undefined;

  afterAll(async () => {
    if (dev === undefined) return;
    // stop() also cleans the shared NATS; our stream lives on the private server, cleaned with it.
    await dev.stop().catch(() => undefined);
  });

  it("journals while NATS is down and ships every event exactly once after it returns", async () => {
    dev = await startDev([], { TOLLGATE_NATS_URL: nats.url });
    const d = dev;
    const principal = `fault-nats-${d.names.id}`;
    const issued = await d.cli(["credentials", "issue", "--principal", principal, "--ttl", "1h", "--format", "json"]);
    expect(issued.code, issued.stderr).toBe(0);
    const s3 = s3Client(d.edgeUrl, JSON.parse(issued.stdout) as Credential);
    const bucket = `fault-nats-${d.names.id}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));

    let restartedAt = 0;
    let killedAt = 0;
    let duringOutage = 0;
    let outage: Promise<void> | undefined;
    const calls = await runLoad(s3, bucket, "k", N, (done) => {
      if (killedAt !== 0 && restartedAt === 0) duringOutage++;
      if (done === 100 && outage === undefined) {
        // Not awaited: the load goes on while NATS is down.
        outage = (async () => {
          await nats.kill();
          killedAt = Date.now();
          await sleep(1000);
          await nats.restart();
          restartedAt = Date.now();
        })();
      }
    });
    await outage;
    expect(calls.filter((c) => c.status !== 200)).toEqual([]);
    expect(calls).toHaveLength(N);

    const loadEndedMs = Date.now() - restartedAt;
    await waitForCount(() => queryAll(d, { principal, operation: "PutObject" }), N, 60_000);
    const catchUpMs = Date.now() - restartedAt;
    await sleep(1000);
    const events = await queryAll(d, { principal, operation: "PutObject" });
    expect(events).toHaveLength(N);
    expectOneEventPerCall(events, calls, bucket);

    const raw = (await readStream(nats.url, d.names.stream)).filter(
      (e) => e.userIdentity?.principalId === principal && e.eventName === "PutObject",
    );
    expect(duplicates(raw.map((e) => e.eventId))).toEqual([]);
    expect(raw).toHaveLength(N);

    const verify = await d.cli(["audit", "verify"]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(await alertsFor(d.env, "dev-edge")).toEqual([]);
    console.info(
      `[audit-faults] NATS: ${N} calls (${duringOutage} answered while NATS was down), ${events.length} events, load ended ${loadEndedMs} ms and all indexed ${catchUpMs} ms after NATS restart`,
    );
  });
});

async function verifyClean(stack: Stack): Promise<void> {
  const verify = await runProcess(process.execPath, [CLI, "audit", "verify"], stack.cliEnv);
  expect(verify.stderr).toBe("");
  expect(verify.code).toBe(0);
  expect(verify.stdout).toContain(`edge ${stack.edgeName}:`);
  expect(await alertsFor(stack.cliEnv, stack.edgeName)).toEqual([]);
}

describe("edge SIGKILLed mid-load and restarted", () => {
  const stack = new Stack(() => ({ natsUrl: nats.url, moto }));
  afterAll(() => stack.stop());

  it("ships each completed call once, interrupted ones at most once, on one unbroken chain", async () => {
    await stack.start();
    const principal = `fault-edge-${stack.names.id}`;
    const s3 = s3Client(stack.edgeUrl, await stack.issue(principal));
    const bucket = `fault-edge-${stack.names.id}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));

    let restarted = false;
    const calls = await runLoad(s3, bucket, "k", N, async (done) => {
      if (done === 100 && !restarted) {
        restarted = true;
        await stack.edge.stop("SIGKILL");
        await stack.startEdge();
      }
    });
    const answered = calls.filter((c) => c.status !== undefined);
    const cutOff = calls.filter((c) => c.status === undefined);
    expect(answered.filter((c) => c.status !== 200)).toEqual([]);
    expect(cutOff.every((c) => c.error !== undefined)).toBe(true);
    expect(cutOff.length).toBeLessThanOrEqual(CONCURRENCY);
    expect(answered.length).toBeGreaterThanOrEqual(N - CONCURRENCY);

    await waitForCount(() => stack.query(principal), answered.length, 30_000);
    await sleep(1500);
    const events = await stack.query(principal);
    expectOneEventPerCall(events, calls, bucket, { edgeKilled: true });
    const interrupted = events.filter((e) => e.tollgate?.outcome === "unknown");
    const answeredInterrupted = interrupted.filter((e) => answered.some((c) => c.key === objectKeyOf(e, bucket)));
    for (const e of interrupted) expect(e.errorCode).toBe("EdgeInterrupted");
    expect(interrupted.length).toBeLessThanOrEqual(CONCURRENCY);

    const raw = (await readStream(nats.url, stack.names.stream)).filter((e) => e.tollgate?.edge === stack.edgeName);
    expect(duplicates(raw.map((e) => e.eventId))).toEqual([]);
    expect(raw.map((e) => e.tollgate?.sequence)).toEqual(raw.map((_, i) => BigInt(i + 1)));

    await verifyClean(stack);
    console.info(
      `[audit-faults] edge kill: ${N} calls, ${answered.length} answered, ${cutOff.length} cut off, ` +
        `${events.length} events (${interrupted.length} EdgeInterrupted, ${answeredInterrupted.length} of them answered 200)`,
    );
  });
});

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  describe(`control plane stopped with ${signal} and restarted during load`, () => {
    const stack = new Stack(() => ({ natsUrl: nats.url, moto }));
    afterAll(() => stack.stop());

    it("keeps serving from the last config and indexes every call once, without false alerts", async () => {
      await stack.start();
      const principal = `fault-cp-${stack.names.id}`;
      const s3 = s3Client(stack.edgeUrl, await stack.issue(principal));
      const bucket = `fault-cp-${stack.names.id}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));

      let restart: Promise<void> | undefined;
      const calls = await runLoad(s3, bucket, "k", N, (done) => {
        if (done === 100 && restart === undefined) {
          restart = (async () => {
            await stack.cp.stop(signal);
            await sleep(500);
            await stack.startControlPlane();
          })();
        }
      });
      await restart;
      const restartedAt = Date.now();
      expect(calls.filter((c) => c.status !== 200)).toEqual([]);

      // Generous: a message delivered to the killed control plane but not acked is redelivered
      // only after the consumer's ack_wait (30 s); see the report of issue #4.
      await waitForCount(() => stack.query(principal), N, 45_000);
      const caughtUpMs = Date.now() - restartedAt;
      await sleep(1000);
      const events = await stack.query(principal);
      expect(events).toHaveLength(N);
      expectOneEventPerCall(events, calls, bucket);
      console.info(
        `[audit-faults] control plane ${signal}: ${N} calls, ${events.length} events, all indexed ${caughtUpMs} ms after restart`,
      );
      await verifyClean(stack);
    });
  });
}
