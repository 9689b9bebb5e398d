import * as fs from "node:fs";
import { dirname } from "node:path";
import type { ControlPlaneClient, EdgeSigningKey } from "@tollgate/sdk";
import { fsyncDir } from "./audit-journal.js";

/** What an enrolled edge keeps in `$TOLLGATE_HOME/edge/enrollment.json`. */
export interface EdgeEnrollment {
  edgeName: string;
  /** The enrolled key (the one in `edge/signing-key.json`). */
  keyId: string;
  enrollTimeMs: number;
  labels: Record<string, string>;
}

/** Why enrollment failed; `code` says where. */
export class EdgeEnrollmentError extends Error {
  override readonly name = "EdgeEnrollmentError";
  constructor(
    readonly code: "ERR_ENROLLMENT_FILE" | "ERR_ENROLLMENT_NAME" | "ERR_ENROLL",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options of {@link loadOrEnroll}. */
export interface LoadOrEnrollOptions {
  /** `$TOLLGATE_HOME/edge/enrollment.json`. */
  file: string;
  key: EdgeSigningKey;
  /** One-time enrollment token; only used when not enrolled yet. */
  enrollToken: string | undefined;
  /** The name the operator configured (TOLLGATE_EDGE_NAME), if any: must match the enrollment. */
  edgeName: string | undefined;
  /** An unauthenticated client (Enroll takes no bearer token). */
  client: ControlPlaneClient;
}

/**
 * Returns the edge's enrollment: the saved one when it names the current key (a restart needs
 * no token), else enrolls with `enrollToken` (the control plane consumes it) and saves the
 * result (0600, fsynced). Returns undefined when the edge is not enrolled and has no token.
 */
export async function loadOrEnroll(options: LoadOrEnrollOptions): Promise<EdgeEnrollment | undefined> {
  const saved = await readEnrollment(options.file);
  if (saved !== undefined && saved.keyId === options.key.keyId) {
    if (options.edgeName !== undefined && options.edgeName !== saved.edgeName) {
      throw new EdgeEnrollmentError(
        "ERR_ENROLLMENT_NAME",
        `this edge is enrolled as ${saved.edgeName} (${options.file}), not ${options.edgeName}`,
      );
    }
    return saved;
  }
  if (options.enrollToken === undefined) return undefined;
  let res: Awaited<ReturnType<ControlPlaneClient["edgeEnrollment"]["enroll"]>>;
  try {
    res = await options.client.edgeEnrollment.enroll({
      token: options.enrollToken,
      publicKeyPem: options.key.publicKeyPem,
      edgeName: options.edgeName ?? "",
    });
  } catch (cause) {
    throw new EdgeEnrollmentError(
      "ERR_ENROLL",
      `enrollment failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const enrollment: EdgeEnrollment = {
    edgeName: res.edge?.name ?? "",
    keyId: res.keyId,
    enrollTimeMs: Number(res.edge?.enrollTimeMs ?? 0),
    labels: { ...(res.edge?.labels ?? {}) },
  };
  if (enrollment.edgeName === "" || enrollment.keyId !== options.key.keyId) {
    throw new EdgeEnrollmentError("ERR_ENROLL", "the control plane's enrollment answer does not match this key");
  }
  await writeEnrollment(options.file, enrollment);
  return enrollment;
}

async function readEnrollment(file: string): Promise<EdgeEnrollment | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new EdgeEnrollmentError("ERR_ENROLLMENT_FILE", `cannot read ${file}`, { cause: err });
  }
  try {
    const raw = JSON.parse(text) as Partial<EdgeEnrollment>;
    if (typeof raw.edgeName !== "string" || typeof raw.keyId !== "string") throw new Error("missing fields");
    return {
      edgeName: raw.edgeName,
      keyId: raw.keyId,
      enrollTimeMs: Number(raw.enrollTimeMs ?? 0),
      labels: raw.labels ?? {},
    };
  } catch (cause) {
    throw new EdgeEnrollmentError("ERR_ENROLLMENT_FILE", `${file} is not a valid enrollment file`, { cause });
  }
}

async function writeEnrollment(file: string, enrollment: EdgeEnrollment): Promise<void> {
  const dir = dirname(file);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, "w", 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(enrollment, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
  await fsyncDir(dir);
}
