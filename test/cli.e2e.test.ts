import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { auditEventToJson, type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForEvents } from "./support/audit.js";
import { CLI, type DevInstance, runProcess, startDev } from "./support/dev-instance.js";

describe("tollgate dev start-up errors", () => {
  it("an unreachable NATS or Redis is one line naming the URL", async () => {
    const base = { ...process.env, TOLLGATE_HOME: "/tmp/tollgate-unreachable-test" };
    const nats = await runProcess(process.execPath, [CLI, "dev", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"], {
      ...base,
      TOLLGATE_NATS_URL: "nats://127.0.0.1:1",
    });
    expect(nats.code).toBe(1);
    expect(nats.stderr.trim().split("\n").at(-1)).toBe("tollgate: cannot reach NATS at nats://127.0.0.1:1");
    expect(nats.stderr).not.toMatch(/\n\s+at /);

    const redis = await runProcess(process.execPath, [CLI, "dev", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"], {
      ...base,
      TOLLGATE_REDIS_URL: "redis://127.0.0.1:1",
    });
    expect(redis.code).toBe(1);
    expect(redis.stderr.trim().split("\n").at(-1)).toBe("tollgate: cannot reach Redis at redis://127.0.0.1:1");
  });
});

describe("tollgate dev with an explicit upstream, and connection management", () => {
  let moto: MotoServer;
  let dev: DevInstance;
  const upstreamSecret = "upstream-secret-that-must-never-leak-0123456789";

  beforeAll(async () => {
    // A second, non-verifying moto: the explicit-upstream path with our own keys.
    moto = await startMotoServer({ verifySignatures: false });
    dev = await startDev([
      "--upstream-endpoint",
      moto.endpoint,
      "--upstream-access-key-id",
      "AKIAUPSTREAMEXAMPLE",
      "--upstream-secret-access-key",
      upstreamSecret,
    ]);
  });

  afterAll(async () => {
    await dev?.stop();
    await moto?.close();
  });

  it("forwards to the given endpoint and never shows its secret", async () => {
    const s3 = new S3Client({
      endpoint: dev.demoEnv.AWS_ENDPOINT_URL as string,
      region: "us-east-1",
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: {
        accessKeyId: dev.demoEnv.AWS_ACCESS_KEY_ID as string,
        secretAccessKey: dev.demoEnv.AWS_SECRET_ACCESS_KEY as string,
        sessionToken: dev.demoEnv.AWS_SESSION_TOKEN as string,
      },
    });
    await runProcess("aws", ["s3", "mb", "s3://explicit-upstream"], {
      PATH: process.env.PATH,
      HOME: dev.home,
      AWS_CONFIG_FILE: "/dev/null",
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      ...dev.demoEnv,
    }).then((r) => expect(r.code, r.stderr).toBe(0));
    await s3.send(new PutObjectCommand({ Bucket: "explicit-upstream", Key: "k", Body: "v" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "explicit-upstream", Key: "k" }));
    expect(await got.Body?.transformToString()).toBe("v");

    const get = await dev.cli(["connection", "get", "default", "--json"]);
    expect(get.code, get.stderr).toBe(0);
    const conn = JSON.parse(get.stdout) as Record<string, unknown>;
    expect(conn.upstreamEndpoint).toBe(moto.endpoint);
    expect(conn.upstreamAccessKeyId).toBe("AKIAUPSTREAMEXAMPLE");
    expect(conn.hasUpstreamSecret).toBe(true);

    const events = await waitForEvents(dev, { principal: "demo-agent" }, 3);
    expect(events.map((e) => e.eventName).sort()).toEqual(["CreateBucket", "GetObject", "PutObject"]);
    const all = [get.stdout, dev.stdout.join("\n"), dev.logs(), events.map(auditEventToJson).join("\n")].join("\n");
    expect(all).not.toContain(upstreamSecret);
  });

  it("creates, lists, gets and deletes connections; a deleted connection's credentials are refused", async () => {
    const create = await dev.cli(
      [
        "connection",
        "create",
        "sandbox",
        "--region",
        "eu-west-1",
        "--upstream-endpoint",
        moto.endpoint,
        "--upstream-access-key-id",
        "AKIASANDBOX",
        "--upstream-secret-access-key-stdin",
      ],
      "sandbox-secret-value-xyz\n",
    );
    expect(create.code, create.stderr).toBe(0);
    expect(create.stdout + create.stderr).not.toContain("sandbox-secret-value-xyz");

    const list = await dev.cli(["connection", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    const names = list.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { name: string }).name)
      .sort();
    expect(names).toEqual(["default", "sandbox"]);
    expect(list.stdout).not.toContain("sandbox-secret-value-xyz");

    const issued = await dev.cli([
      "credentials",
      "issue",
      "--principal",
      "sandbox-bot",
      "--connection",
      "sandbox",
      "--format",
      "credential-process",
    ]);
    expect(issued.code, issued.stderr).toBe(0);
    const cp = JSON.parse(issued.stdout) as {
      Version: number;
      AccessKeyId: string;
      SecretAccessKey: string;
      SessionToken: string;
      Expiration: string;
    };
    expect(cp.Version).toBe(1);
    expect(Date.parse(cp.Expiration)).toBeGreaterThan(Date.now() + 50 * 60_000);

    const env = {
      PATH: process.env.PATH,
      HOME: dev.home,
      AWS_CONFIG_FILE: "/dev/null",
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      AWS_ENDPOINT_URL: dev.edgeUrl,
      AWS_ACCESS_KEY_ID: cp.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: cp.SecretAccessKey,
      AWS_SESSION_TOKEN: cp.SessionToken,
      AWS_DEFAULT_REGION: "eu-west-1",
    };
    const before = await runProcess("aws", ["sts", "get-caller-identity"], env);
    expect(before.code, before.stderr).toBe(0);

    const del = await dev.cli(["connection", "delete", "sandbox"]);
    expect(del.code, del.stderr).toBe(0);
    const missing = await dev.cli(["connection", "get", "sandbox"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^tollgate: connection sandbox not found/);

    // Edges pick the change up within their refresh interval (2 s).
    await new Promise((r) => setTimeout(r, 2500));
    const after = await runProcess("aws", ["sts", "get-caller-identity"], env);
    expect(after.code).not.toBe(0);
    expect(after.stderr).toContain("AccessDenied");

    const events = await waitForEvents(dev, { principal: "sandbox-bot" }, 2);
    expect(events.map((e) => [e.eventName, e.tollgate?.reason])).toEqual([
      ["GetCallerIdentity", "unknown-connection"],
      ["GetCallerIdentity", "allowed"],
    ]);
  });
});
