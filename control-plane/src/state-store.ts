import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { type CredentialKey, generateCredentialKey, TollgateError } from "@tollgate/sdk";

/** The control plane's persistent secrets, kept in `$TOLLGATE_HOME/control-plane/state.json`. */
export interface ControlPlaneState {
  /** Keys that seal gateway credentials, newest first. */
  credentialKeys: CredentialKey[];
  /** 32-byte AES-256-GCM key for upstream secrets at rest in Redis. */
  dataKey: Uint8Array;
  /** SHA-256 of the bootstrap admin token. */
  adminTokenSha256: Uint8Array;
  /** SHA-256 of the bootstrap edge token. */
  edgeTokenSha256: Uint8Array;
}

/** What {@link loadOrCreateState} found or made. */
export interface LoadedState {
  state: ControlPlaneState;
  /** True when this call created the state (and wrote the token files). */
  created: boolean;
  /** Path of state.json. */
  path: string;
}

interface StateFileV1 {
  version: 1;
  createdAt: string;
  credentialKeys: { keyId: string; key: string }[];
  dataKey: string;
  adminTokenSha256: string;
  edgeTokenSha256: string;
}

/** Paths of the files the control plane owns under `$TOLLGATE_HOME`. */
export function statePaths(home: string): { dir: string; state: string; adminToken: string; edgeToken: string } {
  const dir = join(home, "control-plane");
  return {
    dir,
    state: join(dir, "state.json"),
    adminToken: join(home, "admin.token"),
    edgeToken: join(home, "edge.token"),
  };
}

/** SHA-256 of a bearer token, as stored in state.json. */
export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

function newToken(prefix: "tga_" | "tge_"): string {
  return `${prefix}${randomBytes(32).toString("base64url")}`;
}

/**
 * Loads `state.json`, or on first start creates it together with `admin.token` and
 * `edge.token`. Later starts reuse the state and never rewrite the token files.
 */
export async function loadOrCreateState(home: string): Promise<LoadedState> {
  const paths = statePaths(home);
  let text: string | undefined;
  try {
    text = await readFile(paths.state, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new TollgateError("ERR_CONFIG", `cannot read ${paths.state}`, { cause: err });
    }
  }
  if (text !== undefined) return { state: parseState(text, paths.state), created: false, path: paths.state };

  await mkdir(home, { recursive: true, mode: 0o700 });
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  const adminToken = newToken("tga_");
  const edgeToken = newToken("tge_");
  const key = generateCredentialKey();
  const file: StateFileV1 = {
    version: 1,
    createdAt: new Date().toISOString(),
    credentialKeys: [{ keyId: key.keyId, key: Buffer.from(key.key).toString("base64") }],
    dataKey: randomBytes(32).toString("base64"),
    adminTokenSha256: hashToken(adminToken).toString("hex"),
    edgeTokenSha256: hashToken(edgeToken).toString("hex"),
  };
  // Tokens first, state last: a crash in between leaves no state, so the next start starts over
  // instead of keeping hashes whose tokens were never written.
  await writePrivateFile(paths.adminToken, `${adminToken}\n`);
  await writePrivateFile(paths.edgeToken, `${edgeToken}\n`);
  const tmp = `${paths.state}.${process.pid}.tmp`;
  await writePrivateFile(tmp, `${JSON.stringify(file, null, 2)}\n`);
  await rename(tmp, paths.state);
  return { state: parseState(JSON.stringify(file), paths.state), created: true, path: paths.state };
}

async function writePrivateFile(path: string, content: string): Promise<void> {
  const handle = await open(path, "w", 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function parseState(text: string, path: string): ControlPlaneState {
  const bad = (why: string, cause?: unknown): TollgateError =>
    new TollgateError("ERR_CONFIG", `${path}: ${why}`, cause === undefined ? undefined : { cause });
  let raw: Partial<StateFileV1>;
  try {
    raw = JSON.parse(text) as Partial<StateFileV1>;
  } catch (cause) {
    throw bad("not valid JSON", cause);
  }
  if (raw.version !== 1) throw bad(`unsupported version ${String(raw.version)}`);
  const bytes = (name: string, value: unknown, encoding: "base64" | "hex", length: number): Buffer => {
    if (typeof value !== "string") throw bad(`${name} missing`);
    const buf = Buffer.from(value, encoding);
    if (buf.length !== length) throw bad(`${name} must be ${length} bytes`);
    return buf;
  };
  if (!Array.isArray(raw.credentialKeys) || raw.credentialKeys.length === 0) throw bad("credentialKeys missing");
  return {
    credentialKeys: raw.credentialKeys.map((k, i) => {
      if (typeof k?.keyId !== "string" || k.keyId === "") throw bad(`credentialKeys[${i}].keyId missing`);
      return { keyId: k.keyId, key: bytes(`credentialKeys[${i}].key`, k.key, "base64", 32) };
    }),
    dataKey: bytes("dataKey", raw.dataKey, "base64", 32),
    adminTokenSha256: bytes("adminTokenSha256", raw.adminTokenSha256, "hex", 32),
    edgeTokenSha256: bytes("edgeTokenSha256", raw.edgeTokenSha256, "hex", 32),
  };
}

/** Reads a token file written by {@link loadOrCreateState} (for tests and the CLI). */
export async function readTokenFile(path: string): Promise<string> {
  return (await readFile(path, "utf8")).trim();
}
