import { Code, ConnectError } from "@connectrpc/connect";
import { UpstreamCredentialSource } from "@tollgate/proto";
import type { ControlPlaneClient } from "../../control-plane-client.js";
import { CliError } from "../cli-error.js";
import { formatConnectionDetails, formatConnectionJson, formatConnectionTable } from "../format.js";
import type { CliIo } from "../io.js";

/** Options of `tollgate connection create`. */
export interface ConnectionCreateOptions {
  name: string;
  region: string;
  upstreamEndpoint: string;
  upstreamAccessKeyId: string;
  /** Write-only; never printed. */
  upstreamSecretAccessKey: string;
  accountId: string;
  /** Base upstream credentials: "static" (the keys above) or "edge" (the edge's own). Default "static". */
  credentialSource?: "static" | "edge";
  /** Role assumed per principal; "" = none. */
  roleArn?: string;
  externalId?: string;
  replace: boolean;
}

/** Creates (or with `replace`, replaces) a connection and prints it without secrets. */
export async function connectionCreateCommand(
  client: ControlPlaneClient,
  options: ConnectionCreateOptions,
  io: CliIo,
): Promise<void> {
  const response = await client.connections.createConnection({
    connection: {
      name: options.name,
      region: options.region,
      upstreamEndpoint: options.upstreamEndpoint,
      upstreamAccessKeyId: options.upstreamAccessKeyId,
      accountId: options.accountId,
      credentialSource:
        options.credentialSource === "edge" ? UpstreamCredentialSource.EDGE : UpstreamCredentialSource.STATIC,
      roleArn: options.roleArn ?? "",
      externalId: options.externalId ?? "",
    },
    upstreamSecretAccessKey: options.upstreamSecretAccessKey,
    allowReplace: options.replace,
  });
  io.out(`${options.replace ? "saved" : "created"} connection ${response.connection?.name ?? options.name}\n`);
}

/** Lists connections as a table or JSON lines. */
export async function connectionListCommand(
  client: ControlPlaneClient,
  options: { json: boolean },
  io: CliIo,
): Promise<void> {
  const { connections } = await client.connections.listConnections({});
  if (options.json) {
    for (const connection of connections) io.out(formatConnectionJson(connection));
  } else if (connections.length === 0) {
    io.err("tollgate: no connections (create one with: tollgate connection create NAME)\n");
  } else {
    io.out(formatConnectionTable(connections));
  }
}

/** Shows one connection. */
export async function connectionGetCommand(
  client: ControlPlaneClient,
  options: { name: string; json: boolean },
  io: CliIo,
): Promise<void> {
  const { connection } = await client.connections.getConnection({ name: options.name }).catch(notFound(options.name));
  if (connection === undefined) throw new CliError(`connection ${options.name} not found`);
  io.out(options.json ? formatConnectionJson(connection) : formatConnectionDetails(connection));
}

/** Deletes a connection. */
export async function connectionDeleteCommand(
  client: ControlPlaneClient,
  options: { name: string },
  io: CliIo,
): Promise<void> {
  await client.connections.deleteConnection({ name: options.name }).catch(notFound(options.name));
  io.out(`deleted connection ${options.name}\n`);
}

function notFound(name: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof ConnectError && error.code === Code.NotFound) {
      throw new CliError(`connection ${name} not found`);
    }
    throw error;
  };
}
