import type { ControlPlaneClient } from "../../control-plane-client.js";
import { type CredentialFormat, formatCredential, toIssuedCredential } from "../format.js";
import type { CliIo } from "../io.js";

/** Options of `tollgate credentials issue`. */
export interface IssueCredentialCommandOptions {
  principal: string;
  connection: string;
  ttlSeconds: number;
  format: CredentialFormat;
}

/** Issues a gateway credential and prints it in the requested format. */
export async function issueCredentialCommand(
  client: ControlPlaneClient,
  options: IssueCredentialCommandOptions,
  io: CliIo,
): Promise<void> {
  const response = await client.credentials.issueCredential({
    principal: options.principal,
    connection: options.connection,
    ttlSeconds: BigInt(options.ttlSeconds),
  });
  io.out(formatCredential(toIssuedCredential(response), options.format));
}
