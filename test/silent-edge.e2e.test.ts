// Issue #4: "silence is provable". Edges publish signed checkpoints every 5 s, also when idle; the
// control plane alerts when an edge that did goes quiet (a real edge process SIGKILLed), on
// <prefix>.alert.v1.<edge> and in ListAlerts / `tollgate audit alerts`, and notes its recovery.
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { auditAlertSubject, type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATS_URL } from "./support/dev-instance.js";
import { alertsFor, Stack } from "./support/fault-stack.js";

/** Short window for the test (edges checkpoint every 5 s). */
const SILENCE_S = 10;

let moto: MotoServer;
const stack = new Stack(() => ({ natsUrl: NATS_URL, moto }));

beforeAll(async () => {
  moto = await startMotoServer({ verifySignatures: false });
  stack.controlPlaneEnv = { TOLLGATE_AUDIT_SILENCE_ALERT: String(SILENCE_S) };
  await stack.start();
}, 120_000);

afterAll(async () => {
  await stack.stop();
  await moto?.close();
});

interface Alert {
  kind: string;
  edge: string;
  detail: string;
}

async function waitForAlert(kind: string, timeoutMs: number): Promise<Alert> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const alerts = (await alertsFor(stack.cliEnv, stack.edgeName, { all: true })) as Alert[];
    const found = alerts.find((a) => a.kind === kind);
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`no ${kind} alert in ${timeoutMs} ms; alerts: ${JSON.stringify(alerts)}`);
    await sleep(500);
  }
}

describe("silent edge", () => {
  it("alerts when a checkpointing edge is SIGKILLed, and notes when it comes back", async () => {
    const nc = await connect({ servers: NATS_URL });
    const published: Alert[] = [];
    const sub = nc.subscribe(auditAlertSubject(stack.names.subjectPrefix, stack.edgeName), {
      callback: (_err, m) => {
        published.push(m.json<Alert>());
      },
    });
    try {
      // An idle edge checkpoints every 5 s: over more than the window, no alert.
      await sleep((SILENCE_S + 3) * 1000);
      expect(await alertsFor(stack.cliEnv, stack.edgeName, { all: true })).toEqual([]);

      await stack.edge.stop("SIGKILL");
      const killedAt = Date.now();
      const silent = await waitForAlert("silent", (SILENCE_S + 30) * 1000);
      // Not before the window has passed since the last checkpoint (at most 5 s before the kill).
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual((SILENCE_S - 5) * 1000);
      expect(silent.edge).toBe(stack.edgeName);
      expect(silent.detail).toMatch(/^no checkpoint for \d+ s/);
      // Raised once per silence, not on every check.
      await sleep(3000);
      const alerts = (await alertsFor(stack.cliEnv, stack.edgeName, { all: true })) as Alert[];
      expect(alerts.map((a) => a.kind)).toEqual(["silent"]);

      await stack.startEdge();
      const resumed = await waitForAlert("resumed", 30_000);
      expect(resumed.detail).toMatch(/^checkpoints resumed after \d+ s of silence/);
      const after = (await alertsFor(stack.cliEnv, stack.edgeName, { all: true })) as Alert[];
      expect(after.map((a) => a.kind)).toEqual(["resumed", "silent"]);

      // Both went out on NATS too, where alert subscribers (pagers, SIEMs) get them.
      await nc.flush();
      expect(published.map((a) => a.kind)).toEqual(["silent", "resumed"]);
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  });
});
