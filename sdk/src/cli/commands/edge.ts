import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Edge, EdgeSchema } from "@tollgate/proto";
import type { ControlPlaneClient } from "../../control-plane-client.js";
import { CliError } from "../cli-error.js";
import { exportLine, formatTable } from "../format.js";
import type { CliIo } from "../io.js";

/** Parses repeated `--label key=value` flags. */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const i = value.indexOf("=");
    if (i <= 0) throw new CliError(`invalid --label "${value}" (use key=value)`);
    labels[value.slice(0, i)] = value.slice(i + 1);
  }
  return labels;
}

/** Options of `tollgate edge enroll-token`. */
export interface EdgeEnrollTokenOptions {
  name: string;
  labels: Record<string, string>;
  ttlSeconds: number;
  json: boolean;
}

/** Creates a one-time enrollment token and prints it (once; only its hash is stored). */
export async function edgeEnrollTokenCommand(
  client: ControlPlaneClient,
  options: EdgeEnrollTokenOptions,
  io: CliIo,
): Promise<void> {
  const res = await client.edgeAdmin.createEnrollmentToken({
    edgeName: options.name,
    labels: options.labels,
    ttlSeconds: BigInt(options.ttlSeconds),
  });
  const expires = new Date(Number(res.expireTimeMs)).toISOString();
  if (options.json) {
    io.out(`${JSON.stringify({ token: res.token, edgeName: res.edgeName, expireTime: expires })}\n`);
    return;
  }
  io.out(
    `# one-time enrollment token for edge ${res.edgeName}, valid until ${expires}; start the edge with:\n${exportLine("TOLLGATE_EDGE_ENROLL_TOKEN", res.token)}\n`,
  );
}

function ms(value: bigint): string {
  return value === 0n ? "-" : new Date(Number(value)).toISOString();
}

/** The human table of `tollgate edge list`. */
export function formatEdgeTable(edges: readonly Edge[]): string {
  return formatTable(
    ["NAME", "STATUS", "LAST HEARTBEAT", "ENROLLED", "KEY IDS", "LABELS"],
    edges.map((e) => [
      e.name,
      e.status,
      ms(e.lastHeartbeatMs),
      ms(e.enrollTimeMs),
      e.keyIds.join(",") || "-",
      Object.entries(e.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(",") || "-",
    ]),
  );
}

/** Lists enrolled edges with labels, key ids, heartbeat and status. */
export async function edgeListCommand(
  client: ControlPlaneClient,
  options: { json: boolean },
  io: CliIo,
): Promise<void> {
  const { edges } = await client.edge.listEdges({});
  if (options.json) {
    for (const e of edges) io.out(`${toJsonString(EdgeSchema, e, { alwaysEmitImplicit: true })}\n`);
  } else if (edges.length === 0) {
    io.err("tollgate: no enrolled edges (create a token with: tollgate edge enroll-token --name NAME)\n");
  } else {
    io.out(formatEdgeTable(edges));
  }
}

/** Revokes an edge: the control plane refuses it from now on. */
export async function edgeRevokeCommand(
  client: ControlPlaneClient,
  options: { name: string },
  io: CliIo,
): Promise<void> {
  try {
    await client.edgeAdmin.revokeEdge({ edgeName: options.name });
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.NotFound) {
      throw new CliError(`edge ${options.name} is not enrolled`);
    }
    throw error;
  }
  io.out(`revoked edge ${options.name}\n`);
}
