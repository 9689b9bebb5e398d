import { connect } from "node:net";

/** Hides the password of a URL such as `redis://:secret@host:6379`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Host and port of a `scheme://[user[:pass]@]host[:port]` URL. */
export function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url.includes("://") ? url : `tcp://${url}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  return { host, port: parsed.port === "" ? defaultPort : Number(parsed.port) };
}

/** Resolves true when a plain TCP connect to host:port succeeds within `timeoutMs`. */
export function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * True when any server of a (comma-separated) URL list accepts a TCP connection.
 * Malformed URLs count as unreachable.
 */
export async function anyReachable(urls: string, defaultPort: number, timeoutMs: number): Promise<boolean> {
  const targets = urls
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  const results = await Promise.all(
    targets.map((url) => {
      try {
        const { host, port } = hostPort(url, defaultPort);
        return canConnect(host, port, timeoutMs);
      } catch {
        return false;
      }
    }),
  );
  return results.includes(true);
}
