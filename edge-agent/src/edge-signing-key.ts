import * as fs from "node:fs";
import { dirname } from "node:path";
import { type EdgeSigningKey, edgeKeyId, generateEdgeSigningKey } from "@tollgate/sdk";
import { fsyncDir } from "./audit-journal.js";

/** Why {@link loadOrCreateEdgeSigningKey} failed. */
export class EdgeSigningKeyError extends Error {
  override readonly name = "EdgeSigningKeyError";
  readonly code = "ERR_EDGE_SIGNING_KEY";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Loads the edge's Ed25519 checkpoint-signing key from `file` (JSON `{keyId, privateKeyPem,
 * publicKeyPem}`), or creates one there (mode 0600, written to a temp file, fsynced and renamed,
 * so a crash never leaves a half-written key). A file whose key id does not match its public
 * key, or that other users can read, is refused rather than silently replaced: checkpoints
 * signed by a new key would not verify against the key the control plane registered.
 */
export async function loadOrCreateEdgeSigningKey(file: string): Promise<EdgeSigningKey> {
  let text: string | undefined;
  try {
    const st = await fs.promises.stat(file);
    if ((st.mode & 0o077) !== 0) {
      throw new EdgeSigningKeyError(
        `${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    text = await fs.promises.readFile(file, "utf8");
  } catch (err) {
    if (err instanceof EdgeSigningKeyError) throw err;
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new EdgeSigningKeyError(`cannot read ${file}`, { cause: err });
    }
  }
  if (text !== undefined) {
    let key: EdgeSigningKey;
    try {
      const raw = JSON.parse(text) as Partial<EdgeSigningKey>;
      if (
        typeof raw.keyId !== "string" ||
        typeof raw.privateKeyPem !== "string" ||
        typeof raw.publicKeyPem !== "string"
      ) {
        throw new Error("missing fields");
      }
      key = { keyId: raw.keyId, privateKeyPem: raw.privateKeyPem, publicKeyPem: raw.publicKeyPem };
      if (edgeKeyId(key.publicKeyPem) !== key.keyId) throw new Error("keyId does not match publicKeyPem");
    } catch (err) {
      throw new EdgeSigningKeyError(`${file} is not a valid edge signing key`, { cause: err });
    }
    return key;
  }
  const key = generateEdgeSigningKey();
  const dir = dirname(file);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(key, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  // link, not rename: if another process created the key meanwhile, keep theirs.
  try {
    await fs.promises.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST")
      throw new EdgeSigningKeyError(`cannot write ${file}`, { cause: err });
    await fs.promises.unlink(tmp);
    return loadOrCreateEdgeSigningKey(file);
  }
  await fs.promises.unlink(tmp);
  await fsyncDir(dir);
  return key;
}
