import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createControlPlaneClient } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "./control-plane.js";
import { toConnectError } from "./infra-error.js";

const NATS_URL = "nats://127.0.0.1:4222";

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe("toConnectError", () => {
  it("keeps ConnectErrors, maps infrastructure failures to Unavailable with the cause hidden", () => {
    const original = new ConnectError("nope", Code.NotFound);
    expect(toConnectError(original, "redis")).toBe(original);
    const cause = new Error("connect ECONNREFUSED 10.0.0.1:6379");
    const mapped = toConnectError(cause, "redis");
    expect(mapped.code).toBe(Code.Unavailable);
    expect(mapped.message).not.toContain("ECONNREFUSED");
    expect(mapped.cause).toBe(cause);
    const internal = toConnectError(new Error("secret detail"));
    expect(internal.code).toBe(Code.Internal);
    expect(internal.message).not.toContain("secret detail");
  });
});

// Kills its own redis-server to see what clients get when Redis goes away.
describe("Redis down", () => {
  const id = randomBytes(4).toString("hex");
  const stream = `TGTEST_DOWN_${id}`;
  let home: string;
  let redis: ChildProcess;
  let cp: ControlPlane;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "tollgate-down-"));
    const port = await freePort();
    redis = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no", "--dir", home], {
      stdio: "ignore",
    });
    cp = new ControlPlane({
      home,
      redisUrl: `redis://127.0.0.1:${port}`,
      natsUrl: NATS_URL,
      redisPrefix: `t${id}:`,
      auditStream: stream,
      auditSubjectPrefix: `tgdown_${id}`,
      port: 0,
    });
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await cp.start();
        break;
      } catch (err) {
        cp = new ControlPlane(cp.options);
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  afterAll(async () => {
    await cp?.close();
    if (redis.exitCode === null) redis.kill("SIGKILL");
    const nc = await connect({ servers: NATS_URL });
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    await nc.close();
    await rm(home, { recursive: true, force: true });
  });

  it("answers Unavailable without the underlying error in the message", async () => {
    const token = (await readFile(join(home, "admin.token"), "utf8")).trim();
    const client = createControlPlaneClient({ baseUrl: cp.url, token });
    await client.connections.listConnections({});
    const exited = new Promise((resolve) => redis.once("exit", resolve));
    redis.kill("SIGKILL");
    await exited;
    let err: ConnectError | undefined;
    try {
      await client.connections.listConnections({});
    } catch (e) {
      err = ConnectError.from(e);
    }
    expect(err?.code).toBe(Code.Unavailable);
    expect(err?.rawMessage).toBe("registry store unavailable");
  });
});
