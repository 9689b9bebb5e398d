import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readyUrl, ServerChild } from "./child-process.js";

describe("readyUrl", () => {
  it("finds the url of a ready line", () => {
    expect(readyUrl('{"level":30,"event":"ready","url":"http://127.0.0.1:8788","msg":"ready"}')).toBe(
      "http://127.0.0.1:8788",
    );
    expect(readyUrl('{"event":"starting","msg":"ready soon"}')).toBeUndefined();
    expect(readyUrl("ready")).toBeUndefined();
  });
});

describe("ServerChild", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tollgate-child-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function script(source: string): string {
    const path = join(dir, "server.mjs");
    writeFileSync(path, source);
    return path;
  }

  it("resolves with the ready URL, logs to the file, and stops the child", async () => {
    const modulePath = script(`
      console.log(JSON.stringify({ event: "starting" }));
      console.error("a warning");
      console.log(JSON.stringify({ event: "ready", url: "http://127.0.0.1:" + process.env.PORT_FOR_TEST }));
      setInterval(() => {}, 1000);
    `);
    const logFile = join(dir, "logs", "server.log");
    const child = await ServerChild.start({
      name: "test server",
      modulePath,
      env: { ...process.env, PORT_FOR_TEST: "1234" },
      logFile,
    });
    expect(child.url).toBe("http://127.0.0.1:1234");
    await child.stop();
    expect(await child.exited).toEqual({ code: null, signal: "SIGTERM" });
    const log = readFileSync(logFile, "utf8");
    expect(log).toContain('"event":"ready"');
    expect(log).toContain("a warning");
  });

  it("rejects with the last stderr line when the child exits first", async () => {
    const modulePath = script(`
      console.error("starting");
      console.error("tollgate-control-plane: cannot reach Redis at redis://127.0.0.1:6390");
      process.exit(1);
    `);
    await expect(
      ServerChild.start({ name: "control plane", modulePath, env: process.env, logFile: join(dir, "cp.log") }),
    ).rejects.toThrow(
      "control plane exited (code 1) before it was ready: tollgate-control-plane: cannot reach Redis at redis://127.0.0.1:6390",
    );
  });

  it("reports the error of a crash, not Node's stack trace", async () => {
    const modulePath = script(`import "./missing-module.js";`);
    await expect(
      ServerChild.start({ name: "edge", modulePath, env: process.env, logFile: join(dir, "edge.log") }),
    ).rejects.toThrow(/edge exited \(code 1\) before it was ready: Error \[ERR_MODULE_NOT_FOUND\]: Cannot find module/);
  });

  it("gives up after the ready timeout", async () => {
    const modulePath = script("setInterval(() => {}, 1000);");
    await expect(
      ServerChild.start({
        name: "edge",
        modulePath,
        env: process.env,
        logFile: join(dir, "edge.log"),
        readyTimeoutMs: 300,
      }),
    ).rejects.toThrow(/edge did not report ready within 0.3 s/);
  });
});
