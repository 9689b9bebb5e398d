/**
 * Runs matrix rows with boto3: one long-lived `python3 boto3_driver.py` per mode (the way to the edge is
 * process-wide environment), fed one JSON line per row, each row with its own credential and Session.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type CompatCall, type CompatContext, type CompatOutcome, fillPlaceholders } from "../compat-case.js";
import { awsProcessEnv } from "./aws-cli.js";

const DRIVER = join(import.meta.dirname, "boto3_driver.py");
/** A row that has not answered by then fails (and the process is replaced). */
const ROW_TIMEOUT_MS = 60_000;

/** One boto3 process serving rows one at a time. */
export class Boto3Driver {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<(line: string | undefined) => void> = [];
  #stderr = "";
  #exited = false;

  /** Starts the process with the mode's environment (no credential: each row brings its own). */
  constructor(ctx: CompatContext) {
    const env = awsProcessEnv(ctx);
    delete env.AWS_ACCESS_KEY_ID;
    delete env.AWS_SECRET_ACCESS_KEY;
    delete env.AWS_SESSION_TOKEN;
    this.#child = spawn("python3", [DRIVER], { env, stdio: ["pipe", "pipe", "pipe"] });
    this.#child.stderr.on("data", (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-2000);
    });
    createInterface({ input: this.#child.stdout }).on("line", (line) => this.#waiting.shift()?.(line));
    this.#child.on("exit", () => {
      this.#exited = true;
      for (const w of this.#waiting.splice(0)) w(undefined);
    });
  }

  get alive(): boolean {
    return !this.#exited;
  }

  /** Runs one row; never throws. */
  async run(call: CompatCall, ctx: CompatContext): Promise<CompatOutcome> {
    if (call.kind !== "boto3") return { ok: false, error: `not a boto3 call: ${call.kind}` };
    if (this.#exited) return { ok: false, error: `boto3 driver exited: ${this.#stderr.trim().slice(-400)}` };
    const { kind: _, ...rest } = call;
    const payload = { ...rest, params: fillPlaceholders(call.params, ctx.vars), credential: ctx.credential };
    let timer: NodeJS.Timeout | undefined;
    const line = await new Promise<string | undefined>((resolve) => {
      this.#waiting.push(resolve);
      timer = setTimeout(() => {
        this.close();
      }, ROW_TIMEOUT_MS);
      this.#child.stdin.write(`${JSON.stringify(payload)}\n`);
    });
    clearTimeout(timer);
    if (line === undefined) return { ok: false, error: `boto3 driver exited: ${this.#stderr.trim().slice(-400)}` };
    try {
      const parsed = JSON.parse(line) as { ok: boolean; output?: unknown; error?: string };
      return parsed.ok
        ? { ok: true, output: JSON.stringify(parsed.output) }
        : { ok: false, error: parsed.error ?? "unknown error" };
    } catch {
      return { ok: false, error: `unreadable boto3 driver output: ${line.slice(0, 300)}` };
    }
  }

  /** Ends the process (its stdin closes; it is killed if it does not exit). */
  close(): void {
    if (this.#exited) return;
    this.#child.stdin.end();
    setTimeout(() => {
      if (!this.#exited) this.#child.kill("SIGKILL");
    }, 5_000).unref();
  }
}
