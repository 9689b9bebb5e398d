import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CliError } from "./cli-error.js";
import { readSessionFile } from "./session-file.js";

/** Default control-plane URL (contracts: TOLLGATE_API_URL). */
export const DEFAULT_API_URL = "http://127.0.0.1:8788";

/** `$TOLLGATE_HOME/dev.json`, written by `tollgate dev`. */
export interface DevState {
  edgeUrl: string;
  apiUrl: string;
}

/** Paths under TOLLGATE_HOME that the CLI reads or writes. */
export function homePaths(home: string) {
  return {
    adminToken: join(home, "admin.token"),
    devState: join(home, "dev.json"),
    logs: join(home, "logs"),
  };
}

/** Reads dev.json; undefined when absent or unreadable. */
export function readDevState(home: string): Partial<DevState> | undefined {
  let text: string;
  try {
    text = readFileSync(homePaths(home).devState, "utf8");
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const { edgeUrl, apiUrl } = parsed as Record<string, unknown>;
    return {
      ...(typeof edgeUrl === "string" ? { edgeUrl } : {}),
      ...(typeof apiUrl === "string" ? { apiUrl } : {}),
    };
  } catch {
    return undefined;
  }
}

/** What the API commands need to reach the control plane, from flags and the environment. */
export interface ApiContext {
  home: string;
  /** `--api` flag. */
  apiFlag?: string | undefined;
  /** TOLLGATE_API_URL. */
  apiUrlEnv?: string | undefined;
  /** TOLLGATE_ADMIN_TOKEN. */
  adminTokenEnv?: string | undefined;
  /** TOLLGATE_SESSION_TOKEN. */
  sessionTokenEnv?: string | undefined;
}

/** `--api` > TOLLGATE_API_URL > dev.json `apiUrl` > http://127.0.0.1:8788. */
export function resolveApiUrl(context: ApiContext): string {
  const url =
    nonEmpty(context.apiFlag) ?? nonEmpty(context.apiUrlEnv) ?? readDevState(context.home)?.apiUrl ?? DEFAULT_API_URL;
  return /^[a-z]+:\/\//i.test(url) ? url : `http://${url}`;
}

/** TOLLGATE_ADMIN_TOKEN > `$TOLLGATE_HOME/admin.token`. */
export function resolveAdminToken(context: ApiContext): string {
  const fromEnv = nonEmpty(context.adminTokenEnv);
  if (fromEnv !== undefined) return fromEnv;
  return readAdminTokenFile(context.home);
}

/**
 * The bearer token of API commands: TOLLGATE_SESSION_TOKEN > TOLLGATE_ADMIN_TOKEN > the session
 * of `tollgate login` (`session.json`, when it is for this control plane) > `admin.token`
 * (break-glass). An expired session is an error rather than a silent switch to break-glass.
 */
export function resolveBearerToken(context: ApiContext, nowMs = Date.now()): string {
  const sessionEnv = nonEmpty(context.sessionTokenEnv);
  if (sessionEnv !== undefined) return sessionEnv;
  const adminEnv = nonEmpty(context.adminTokenEnv);
  if (adminEnv !== undefined) return adminEnv;
  const session = readSessionFile(context.home);
  if (session !== undefined && sameUrl(session.apiUrl, resolveApiUrl(context))) {
    if (Date.parse(session.expiresAt) <= nowMs) {
      throw new CliError(
        `session of ${session.principal} expired at ${session.expiresAt}: run \`tollgate login\` (or \`tollgate logout\`)`,
      );
    }
    return session.token;
  }
  try {
    return readAdminTokenFile(context.home);
  } catch {
    throw new CliError(
      `not logged in: run \`tollgate login\`, or set TOLLGATE_ADMIN_TOKEN (no ${homePaths(context.home).adminToken})`,
    );
  }
}

function sameUrl(a: string, b: string): boolean {
  return a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}

/** Reads `$TOLLGATE_HOME/admin.token`, trimmed. */
export function readAdminTokenFile(home: string): string {
  const path = homePaths(home).adminToken;
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch {
    throw new CliError(`no admin token: set TOLLGATE_ADMIN_TOKEN or start the control plane (missing ${path})`);
  }
  if (token === "") throw new CliError(`no admin token: ${path} is empty`);
  return token;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
