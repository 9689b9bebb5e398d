import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Runs the built deployable (npm run build first), as `tollgate dev` and the e2e tests do.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(env: Record<string, string>, onStdout?: (line: string, kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      for (const line of chunk.split("\n")) if (line !== "") onStdout?.(line, () => child.kill("SIGTERM"));
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("tollgate-control-plane (dist/main.js)", () => {
  let home: string;
  const id = randomBytes(4).toString("hex");
  const stream = `TGTEST_MAIN_${id}`;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "tollgate-main-"));
  });
  afterAll(async () => {
    const nc = await connect({ servers: "nats://127.0.0.1:4222" });
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
    await nc.close();
    await rm(home, { recursive: true, force: true });
  });

  it("logs the ready line with the bound URL, serves /healthz and stops cleanly on SIGTERM", async () => {
    let health: Promise<string> | undefined;
    const result = await run(
      {
        TOLLGATE_HOME: home,
        TOLLGATE_API_LISTEN: "127.0.0.1:0",
        TOLLGATE_REDIS_PREFIX: `tollgate-test:${id}:`,
        TOLLGATE_AUDIT_STREAM: stream,
        TOLLGATE_AUDIT_SUBJECT_PREFIX: `tgmain_${id}`,
      },
      (line, kill) => {
        const obj = JSON.parse(line) as { event?: string; url?: string };
        if (obj.event === "ready") {
          health = fetch(`${obj.url}/healthz`)
            .then((r) => r.text())
            .finally(kill);
        }
      },
    );
    expect(result.code).toBe(0);
    expect(await health).toBe("ok");
    expect(result.stdout).toMatch(/"event":"ready".*"url":"http:\/\/127\.0\.0\.1:\d+"/);
    expect(result.stdout).toContain('"event":"stopped"');
    expect(result.stderr).toBe("");
  });

  it("exits 1 with one stderr line naming an unreachable Redis", async () => {
    const result = await run({ TOLLGATE_HOME: home, TOLLGATE_REDIS_URL: "redis://127.0.0.1:1" });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("tollgate-control-plane: cannot reach Redis at redis://127.0.0.1:1\n");
  });

  it("exits 1 with one stderr line naming an unreachable NATS", async () => {
    const result = await run({ TOLLGATE_HOME: home, TOLLGATE_NATS_URL: "nats://127.0.0.1:1" });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("tollgate-control-plane: cannot reach NATS at nats://127.0.0.1:1\n");
  });

  it("names the variable with a bad value", async () => {
    for (const [name, value] of [
      ["TOLLGATE_API_LISTEN", "nonsense"],
      ["TOLLGATE_LOG_LEVEL", "loud"],
      ["TOLLGATE_REDIS_URL", "http://x"],
      ["TOLLGATE_AUDIT_REPLICAS", "0"],
      ["TOLLGATE_AUDIT_REPLICAS", "6"],
      ["TOLLGATE_AUDIT_REPLICAS", "2.5"],
      ["TOLLGATE_AUDIT_MAX_AGE", "-1"],
      ["TOLLGATE_NATS_URL", "nats://127.0.0.1:4222,bogus"],
    ] as const) {
      const result = await run({ TOLLGATE_HOME: home, [name]: value });
      expect(result.code).toBe(1);
      expect(result.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(result.stderr).toContain(name);
    }
  }, 120_000);
});
