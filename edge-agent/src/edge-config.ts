import { Code, ConnectError } from "@connectrpc/connect";
import { type GetEdgeConfigResponse, UpstreamCredentialSource } from "@tollgate/proto";
import type { ControlPlaneClient } from "@tollgate/sdk";
import type { Logger } from "./logger.js";
import type { UpstreamCredentials } from "./upstream-signer.js";

/** A connection as the edge uses it. */
export interface EdgeConnectionConfig {
  name: string;
  region: string;
  upstreamEndpoint: string;
  /** The connection's static keys (empty for `credentialSource` "edge"). */
  credentials: UpstreamCredentials;
  accountId: string;
  /** "static" (the keys above) or "edge" (the edge process's own AWS credentials). */
  credentialSource: "static" | "edge";
  /** When set, the base credentials assume this role per principal. */
  roleArn: string;
  externalId: string;
}

/** Everything the edge needs from the control plane. */
export interface EdgeConfigSnapshot {
  revision: bigint;
  connections: ReadonlyMap<string, EdgeConnectionConfig>;
  credentialKeys: ReadonlyMap<string, Uint8Array>;
  auditStream: string;
  auditSubjectPrefix: string;
  /** Revoked credential ids → enforced until (Unix ms). */
  revokedCredentials: ReadonlyMap<string, number>;
  /** Revoked principals → enforced until (Unix ms). */
  revokedPrincipals: ReadonlyMap<string, number>;
  /** True once the control plane refused this edge (revoked): nothing is served. */
  edgeRevoked: boolean;
}

/** Options for {@link EdgeConfigSource}. */
export interface EdgeConfigSourceOptions {
  client: ControlPlaneClient;
  edgeName: string;
  logger: Logger;
  /** How often to poll for changes. Default 2000 ms. */
  refreshIntervalMs?: number;
}

function toSnapshot(res: GetEdgeConfigResponse): EdgeConfigSnapshot {
  const connections = new Map<string, EdgeConnectionConfig>();
  for (const c of res.connections) {
    connections.set(c.name, {
      name: c.name,
      region: c.region,
      upstreamEndpoint: c.upstreamEndpoint,
      accountId: c.accountId,
      credentialSource: c.credentialSource === UpstreamCredentialSource.EDGE ? "edge" : "static",
      roleArn: c.roleArn,
      externalId: c.externalId,
      credentials: {
        accessKeyId: c.upstreamAccessKeyId,
        secretAccessKey: c.upstreamSecretAccessKey,
        ...(c.upstreamSessionToken !== "" ? { sessionToken: c.upstreamSessionToken } : {}),
      },
    });
  }
  const credentialKeys = new Map<string, Uint8Array>();
  for (const k of res.credentialKeys) credentialKeys.set(k.keyId, k.key);
  const revokedCredentials = new Map<string, number>();
  const revokedPrincipals = new Map<string, number>();
  for (const r of res.revocations) {
    if (r.credentialId !== "") revokedCredentials.set(r.credentialId, Number(r.untilMs));
    if (r.principal !== "") revokedPrincipals.set(r.principal, Number(r.untilMs));
  }
  return {
    revokedCredentials,
    revokedPrincipals,
    edgeRevoked: false,
    revision: res.revision,
    connections,
    credentialKeys,
    auditStream: res.audit?.stream ?? "",
    auditSubjectPrefix: res.audit?.subjectPrefix ?? "",
  };
}

/**
 * Holds the edge's configuration, fetched from the control plane and refreshed by polling.
 * If a refresh fails the last good snapshot stays in force (edges keep serving through a
 * control-plane restart); `start()` fails if the first fetch does.
 */
export class EdgeConfigSource {
  readonly #options: Required<EdgeConfigSourceOptions>;
  #snapshot: EdgeConfigSnapshot | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #fetchedAtMs = 0;

  constructor(options: EdgeConfigSourceOptions) {
    this.#options = { refreshIntervalMs: 2000, ...options };
  }

  /** The current snapshot; throws before `start()` has succeeded. */
  get snapshot(): EdgeConfigSnapshot {
    if (this.#snapshot === undefined) throw new Error("edge config not loaded");
    return this.#snapshot;
  }

  async start(): Promise<void> {
    this.#snapshot = await this.#fetch();
    this.#fetchedAtMs = Date.now();
    this.#timer = setInterval(() => void this.refresh(), this.#options.refreshIntervalMs);
    this.#timer.unref();
  }

  /** Fetches now (joining a fetch already under way); keeps the old snapshot and logs on failure. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#refreshOnce().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /**
   * Refreshes unless the snapshot is younger than `minAgeMs`. The request path calls this when
   * a credential names a connection it doesn't know yet, so a new connection works at once
   * while a flood of bad credentials can't hammer the control plane.
   */
  async refreshIfOlderThan(minAgeMs: number): Promise<void> {
    if (Date.now() - this.#fetchedAtMs < minAgeMs) return;
    await this.refresh();
  }

  async #refreshOnce(): Promise<void> {
    try {
      const next = await this.#fetch();
      this.#fetchedAtMs = Date.now();
      if (this.#snapshot === undefined || next.revision !== this.#snapshot.revision) {
        this.#options.logger.info({ revision: next.revision.toString() }, "edge config updated");
      }
      this.#snapshot = next;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.PermissionDenied && this.#snapshot !== undefined) {
        // Revoked by the control plane: stop serving (fail closed) rather than run on old config.
        if (!this.#snapshot.edgeRevoked) {
          this.#options.logger.error(
            { event: "edge_revoked", err: err.rawMessage },
            "the control plane refuses this edge; refusing every call",
          );
        }
        this.#snapshot = { ...this.#snapshot, connections: new Map(), credentialKeys: new Map(), edgeRevoked: true };
        return;
      }
      this.#options.logger.warn({ err: String(err) }, "edge config refresh failed; keeping last config");
    }
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #fetch(): Promise<EdgeConfigSnapshot> {
    const res = await this.#options.client.edge.getEdgeConfig({ edgeName: this.#options.edgeName });
    return toSnapshot(res);
  }
}
