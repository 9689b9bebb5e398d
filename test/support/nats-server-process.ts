import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const NATS_SERVER_BIN = "/usr/sbin/nats-server";

/** A free TCP port on 127.0.0.1 (bound and released; a tiny race is accepted in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * A private `nats-server -js` on a fixed free port with its own store dir, which a test can
 * SIGKILL and start again on the same port and store (so JetStream streams survive).
 */
export class NatsServerProcess {
  readonly port: number;
  readonly storeDir: string;
  #child: ChildProcess | undefined;
  stderr = "";

  private constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts a new server on a free port with a fresh store dir and waits until it accepts connections. */
  static async start(): Promise<NatsServerProcess> {
    const server = new NatsServerProcess(await freePort(), mkdtempSync(join(tmpdir(), "tollgate-nats-")));
    await server.restart();
    return server;
  }

  /** (Re)starts the server on the same port and store dir; resolves once it accepts TCP connections. */
  async restart(timeoutMs = 15_000): Promise<void> {
    if (this.running) throw new Error("nats-server is already running");
    const child = spawn(NATS_SERVER_BIN, ["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.storeDir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#child = child;
    child.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString();
    });
    const deadline = Date.now() + timeoutMs;
    // Wait for "Server is ready" (JetStream recovered) and the port to accept connections.
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`nats-server exited: ${this.stderr}`);
      if (this.stderr.includes("Server is ready") && (await tcpOpen(this.port))) return;
      await sleep(20);
    }
    throw new Error(`nats-server on ${this.port} not ready in ${timeoutMs} ms: ${this.stderr}`);
  }

  /** Kills the server with SIGKILL (no clean shutdown) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    this.stderr = "";
  }

  /** Kills the server and deletes its store dir. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
