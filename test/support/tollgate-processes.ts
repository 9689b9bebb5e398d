import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import {
  type ControlPlaneClient,
  createControlPlaneClient,
  generateEdgeSigningKey,
  withEdgeMallocTunables,
} from "@tollgate/sdk";
import { REPO_ROOT } from "./dev-instance.js";

export const CONTROL_PLANE_MAIN = join(REPO_ROOT, "control-plane", "dist", "main.js");
export const EDGE_MAIN = join(REPO_ROOT, "edge-agent", "dist", "main.js");

/** A control-plane or edge process started by a test, waited for until its `ready` line. */
export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Every stdout (pino JSON) and stderr line so far. */
  lines: string[];
  /** Sends `signal` and waits for the exit (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `node modulePath` with `env` and waits for `{"event":"ready","url":...}` on stdout. */
export async function startServerProcess(
  name: string,
  modulePath: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
): Promise<ServerProcess> {
  // Edges start as deployed (the malloc tunable every launcher sets).
  const childEnv = modulePath === EDGE_MAIN ? withEdgeMallocTunables(env) : env;
  const child = spawn(process.execPath, [modulePath], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (l) => lines.push(l));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready in ${timeoutMs} ms: ${lines.join("\n")}`)),
      timeoutMs,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}): ${lines.join("\n")}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      lines.push(line);
      try {
        const rec = JSON.parse(line) as { event?: string; url?: string };
        if (rec.event === "ready" && rec.url !== undefined) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          resolve(rec.url);
        }
      } catch {
        // not JSON
      }
    });
  });
  return {
    url,
    child,
    lines,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Admin client of a control plane whose home is `home`. */
export function adminClientFor(home: string, apiUrl: string) {
  const token = readFileSync(join(home, "admin.token"), "utf8").trim();
  return createControlPlaneClient({ baseUrl: apiUrl, token });
}

/**
 * Enrolls a new edge `edgeName` (a fresh key, a one-time token from the admin token in `home`) and
 * returns a client that signs as it: what a test uses to read the edge configuration.
 */
export async function enrolledEdgeClient(home: string, apiUrl: string, edgeName: string): Promise<ControlPlaneClient> {
  const { token } = await adminClientFor(home, apiUrl).edgeAdmin.createEnrollmentToken({ edgeName });
  const key = generateEdgeSigningKey();
  await createControlPlaneClient({ baseUrl: apiUrl }).edgeEnrollment.enroll({ token, publicKeyPem: key.publicKeyPem });
  return createControlPlaneClient({ baseUrl: apiUrl, edgeAuth: { edgeName, key } });
}
