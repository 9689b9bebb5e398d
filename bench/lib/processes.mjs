// Process plumbing for the benchmark: free ports, ready lines, and /proc readings (CPU time,
// peak RSS) of the processes under test.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { createInterface } from "node:readline";

/** A port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Spawns `node <args>` and waits for a stdout line matching `readyRe`; keeps draining output
 * (a blocked stdout pipe would stall a pino logger) into `lines` (last 200 kept).
 */
export function spawnUntilReady(cmd, args, { env, readyRe, timeoutMs = 60_000, name }) {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  const counts = { warn: 0, error: 0, lastProblem: "" };
  const keep = (l) => {
    lines.push(l);
    if (lines.length > 200) lines.shift();
    // pino levels: 40 warn, 50 error, 60 fatal
    const m = /"level":(\d+)/.exec(l);
    if (m !== null && Number(m[1]) >= 40) {
      if (Number(m[1]) === 40) counts.warn++;
      else counts.error++;
      counts.lastProblem = l.slice(0, 500);
    }
  };
  createInterface({ input: child.stderr }).on("line", keep);
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready in ${timeoutMs} ms:\n${lines.join("\n")}`)),
      timeoutMs,
    );
    createInterface({ input: child.stdout }).on("line", (l) => {
      keep(l);
      const m = readyRe.exec(l);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${lines.join("\n")}`));
    });
  });
  return { child, pid: child.pid, lines, counts, exited, ready };
}

/** Sends SIGTERM to one child we started, then SIGKILL after `graceMs`. */
export async function stopChild(proc, graceMs = 10_000) {
  if (proc === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill("SIGTERM");
  const t = setTimeout(() => proc.child.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(t);
}

const TICKS_PER_S = 100; // USER_HZ on Linux

/** user+system CPU seconds of one process (0 if it is gone). */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime/stime are fields 14/15.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return 0;
  }
}

/** CPU seconds of reaped children of this process (wrk, once it has exited). */
export function reapedChildrenCpuSeconds() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_S;
}

/** Direct children of a process (nginx workers of the master). */
export function childPids(pid) {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** Pid of a process by its command name, for reading its CPU time only (e.g. nats-server). */
export function pidByComm(comm) {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, "utf8").trim() === comm) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

function statusKib(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

/** Peak resident set size (VmHWM) in MiB. */
export function peakRssMiB(pid) {
  return statusKib(pid, "VmHWM") / 1024;
}

/** Current resident set size (VmRSS) in MiB. */
export function rssMiB(pid) {
  return statusKib(pid, "VmRSS") / 1024;
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, our own child), so each phase has its own peak. */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Busy (non-idle, non-iowait) CPU seconds of the whole machine, from /proc/stat. */
export function machineBusyCpuSeconds() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICKS_PER_S;
}
