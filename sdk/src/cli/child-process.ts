import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { CliError } from "./cli-error.js";

/** Options for {@link ServerChild.start}. */
export interface ServerChildOptions {
  /** Name in messages, e.g. `control plane`. */
  name: string;
  /** Script run with this Node binary. */
  modulePath: string;
  /** The child's complete environment. */
  env: NodeJS.ProcessEnv;
  /** Receives the child's stdout and stderr (appended; the directory is created). */
  logFile: string;
  /** How long to wait for the ready line, in milliseconds. Default 30000. */
  readyTimeoutMs?: number;
  /** Aborting kills the child if it is not ready yet. */
  signal?: AbortSignal;
}

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Describes an exit as `code 1` or `signal SIGKILL`. */
export function describeExit(exit: ChildExit): string {
  return exit.code !== null ? `code ${exit.code}` : `signal ${exit.signal ?? "unknown"}`;
}

const STOP_GRACE_MS = 5_000;
/** Children still running, killed if this process exits without stopping them. */
const liveChildren = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * A Tollgate server process (control plane or edge) run as a child: its logs go to a file, and
 * {@link ServerChild.start} resolves once it logs its `{"event":"ready","url":...}` line.
 */
export class ServerChild {
  readonly name: string;
  readonly logFile: string;
  /** The URL from the ready line. */
  readonly url: string;
  /** URLs of other `{"event":...,"url":...}` lines logged before the ready line, by event (e.g. `proxy-ready`). */
  readonly eventUrls: ReadonlyMap<string, string>;
  /** Resolves when the child has exited and its output is flushed. */
  readonly exited: Promise<ChildExit>;
  readonly #child: ChildProcess;
  #stopping: Promise<void> | undefined;

  private constructor(
    name: string,
    logFile: string,
    url: string,
    child: ChildProcess,
    exited: Promise<ChildExit>,
    eventUrls: ReadonlyMap<string, string>,
  ) {
    this.name = name;
    this.logFile = logFile;
    this.url = url;
    this.eventUrls = eventUrls;
    this.#child = child;
    this.exited = exited;
  }

  /** Spawns the child and waits for its ready line; rejects with a {@link CliError} if it exits first. */
  static start(options: ServerChildOptions): Promise<ServerChild> {
    const { name, logFile } = options;
    mkdirSync(dirname(logFile), { recursive: true });
    const log = createWriteStream(logFile, { flags: "a" });
    const child = spawn(process.execPath, [options.modulePath], {
      env: options.env,
      // Own process group: a terminal Ctrl-C reaches only us, and we stop children in order.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const pid = child.pid;
    if (pid !== undefined) {
      liveChildren.add(pid);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.once("exit", () => {
          for (const p of liveChildren) killGroup(p, "SIGKILL");
        });
      }
    }

    let lastStderrLine = "";
    const eventUrls = new Map<string, string>();
    let spawnError: Error | undefined;
    const exited = new Promise<ChildExit>((resolve) => {
      child.once("error", (error) => {
        spawnError = error;
        if (pid === undefined) resolve({ code: null, signal: null });
      });
      child.once("close", (code, signal) => {
        if (pid !== undefined) liveChildren.delete(pid);
        log.end();
        resolve({ code, signal });
      });
    });

    return new Promise<ServerChild>((resolve, reject) => {
      let settled = false;
      const fail = (message: string): void => {
        if (settled) return;
        settled = true;
        cleanup();
        if (pid !== undefined) killGroup(pid, "SIGKILL");
        reject(new CliError(message));
      };
      const timer = setTimeout(
        () =>
          fail(`${name} did not report ready within ${(options.readyTimeoutMs ?? 30_000) / 1000} s, see ${logFile}`),
        options.readyTimeoutMs ?? 30_000,
      );
      const onAbort = (): void => fail(`${name}: start-up interrupted`);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };

      createInterface({ input: child.stdout as NodeJS.ReadableStream, crlfDelay: Number.POSITIVE_INFINITY }).on(
        "line",
        (line) => {
          log.write(`${line}\n`);
          if (settled) return;
          const event = eventUrl(line);
          if (event === undefined) return;
          if (event.event !== "ready") {
            eventUrls.set(event.event, event.url);
            return;
          }
          settled = true;
          cleanup();
          resolve(new ServerChild(name, logFile, event.url, child, exited, eventUrls));
        },
      );
      createInterface({ input: child.stderr as NodeJS.ReadableStream, crlfDelay: Number.POSITIVE_INFINITY }).on(
        "line",
        (line) => {
          log.write(`${line}\n`);
          if (isMessageLine(line)) lastStderrLine = line.trim();
        },
      );
      void exited.then((exit) => {
        if (spawnError !== undefined) {
          fail(`cannot start ${name}: ${spawnError.message}`);
          return;
        }
        const detail = lastStderrLine === "" ? `see ${logFile}` : lastStderrLine;
        fail(`${name} exited (${describeExit(exit)}) before it was ready: ${detail}`);
      });
      if (options.signal?.aborted) onAbort();
    });
  }

  /** SIGTERM to the child's process group, SIGKILL after 5 s; resolves when it has exited. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const pid = this.#child.pid;
      if (pid === undefined) return;
      if (this.#child.exitCode === null && this.#child.signalCode === null) {
        killGroup(pid, "SIGTERM");
        const timer = setTimeout(() => killGroup(pid, "SIGKILL"), STOP_GRACE_MS);
        await this.exited;
        clearTimeout(timer);
      } else {
        await this.exited;
      }
    })();
    return this.#stopping;
  }
}

/**
 * Whether a stderr line can explain a failed start: not blank, not part of a Node stack trace
 * (indented frames, `{`/`}` of error properties, the trailing `Node.js vX` banner).
 */
function isMessageLine(line: string): boolean {
  return line.trim() !== "" && !/^\s/.test(line) && !/^[{}]$/.test(line.trim()) && !/^Node\.js v\d/.test(line);
}

/** The `url` of a `{"event":"ready","url":"http://..."}` log line, else undefined. */
export function readyUrl(line: string): string | undefined {
  const e = eventUrl(line);
  return e?.event === "ready" ? e.url : undefined;
}

/** The `event` and `url` of a `{"event":"...-ready"|"ready","url":"..."}` log line, else undefined. */
function eventUrl(line: string): { event: string; url: string } | undefined {
  if (!line.includes('ready"')) return undefined;
  try {
    const parsed = JSON.parse(line) as unknown;
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const { event, url } = parsed as Record<string, unknown>;
    return typeof event === "string" &&
      (event === "ready" || event.endsWith("-ready")) &&
      typeof url === "string" &&
      url !== ""
      ? { event, url }
      : undefined;
  } catch {
    return undefined;
  }
}
