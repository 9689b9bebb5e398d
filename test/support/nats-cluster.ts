import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { freePort, NATS_SERVER_BIN } from "./nats-server-process.js";

/** One node of a {@link NatsCluster}. */
export interface NatsClusterNode {
  /** `--server_name` (what stream info reports as leader / replica name). */
  name: string;
  port: number;
  routePort: number;
  storeDir: string;
  child: ChildProcess;
  stderr: string;
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * A private JetStream cluster of `nats-server` processes on free ports (cluster `tgtest`, nodes
 * `n0`, `n1`, …), each with its own store dir; a test can SIGKILL any node.
 */
export class NatsCluster {
  readonly nodes: NatsClusterNode[];

  private constructor(nodes: NatsClusterNode[]) {
    this.nodes = nodes;
  }

  /** Every node's client URL, comma-separated (the `TOLLGATE_NATS_URL` form). */
  get urls(): string {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(",");
  }

  /** Starts `size` nodes and waits until JetStream answers in cluster mode (a meta leader is elected). */
  static async start(size = 3, timeoutMs = 30_000): Promise<NatsCluster> {
    const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
    const specs = Array.from({ length: size }, (_, i) => ({
      name: `n${i}`,
      port: ports[2 * i] ?? 0,
      routePort: ports[2 * i + 1] ?? 0,
    }));
    const nodes = specs.map((spec): NatsClusterNode => {
      const storeDir = mkdtempSync(join(tmpdir(), `tollgate-nats-${spec.name}-`));
      const routes = specs
        .filter((o) => o !== spec)
        .map((o) => `nats://127.0.0.1:${o.routePort}`)
        .join(",");
      const child = spawn(
        NATS_SERVER_BIN,
        [
          ...["-a", "127.0.0.1", "-p", String(spec.port), "-js", "-sd", storeDir],
          ...["--server_name", spec.name, "--cluster_name", "tgtest"],
          ...["--cluster", `nats://127.0.0.1:${spec.routePort}`, "--routes", routes],
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      const node: NatsClusterNode = { ...spec, storeDir, child, stderr: "" };
      child.stderr?.on("data", (d: Buffer) => {
        node.stderr += d.toString();
      });
      return node;
    });
    const cluster = new NatsCluster(nodes);
    try {
      await cluster.#waitReady(timeoutMs);
    } catch (err) {
      await cluster.dispose();
      throw err;
    }
    return cluster;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      for (const n of this.nodes) if (!running(n.child)) throw new Error(`nats-server ${n.name} exited: ${n.stderr}`);
      if (this.nodes.every((n) => n.stderr.includes("Server is ready"))) {
        const nc = await connect({ servers: this.urls.split(","), timeout: 1000 }).catch((e: unknown) => {
          last = String(e);
          return undefined;
        });
        if (nc !== undefined) {
          try {
            const jsm = await jetstreamManager(nc, { timeout: 2000 });
            await jsm.getAccountInfo();
            return;
          } catch (e) {
            last = String(e);
          } finally {
            await nc.close();
          }
        }
      }
      await sleep(250);
    }
    throw new Error(
      `NATS cluster not ready in ${timeoutMs} ms (${last}): ${this.nodes.map((n) => n.stderr).join("\n")}`,
    );
  }

  /** The node named `name`. */
  node(name: string): NatsClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no NATS node ${name}`);
    return n;
  }

  /** SIGKILLs node `name` and waits for it to exit. */
  async kill(name: string): Promise<void> {
    const { child } = this.node(name);
    if (!running(child)) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  /** Kills every node and deletes their store dirs. */
  async dispose(): Promise<void> {
    for (const n of this.nodes) {
      await this.kill(n.name);
      rmSync(n.storeDir, { recursive: true, force: true });
    }
  }
}
