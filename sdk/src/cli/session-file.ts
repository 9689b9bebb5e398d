import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** `$TOLLGATE_HOME/session.json`, written by `tollgate login` (0600). */
export interface SessionFile {
  /** Control plane the session belongs to. */
  apiUrl: string;
  /** Session token: a bearer token, secret. */
  token: string;
  principal: string;
  roles: string[];
  authMethod: string;
  /** ISO 8601. */
  expiresAt: string;
}

/** Path of the session file. */
export function sessionPath(home: string): string {
  return join(home, "session.json");
}

/** Reads the session file; undefined when there is none or it is unreadable. */
export function readSessionFile(home: string): SessionFile | undefined {
  let text: string;
  try {
    text = readFileSync(sessionPath(home), "utf8");
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as Partial<SessionFile>;
    if (typeof v.token !== "string" || typeof v.apiUrl !== "string" || typeof v.expiresAt !== "string")
      return undefined;
    return {
      apiUrl: v.apiUrl,
      token: v.token,
      principal: typeof v.principal === "string" ? v.principal : "",
      roles: Array.isArray(v.roles) ? v.roles.filter((r): r is string => typeof r === "string") : [],
      authMethod: typeof v.authMethod === "string" ? v.authMethod : "",
      expiresAt: v.expiresAt,
    };
  } catch {
    return undefined;
  }
}

/** Writes the session file atomically with mode 0600. */
export function writeSessionFile(home: string, session: SessionFile): void {
  const path = sessionPath(home);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Deletes the session file; true when there was one. */
export function removeSessionFile(home: string): boolean {
  try {
    rmSync(sessionPath(home));
    return true;
  } catch {
    return false;
  }
}
