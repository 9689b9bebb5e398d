import { toJsonString } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { CredentialInfoSchema, RevocationInfoSchema } from "@tollgate/proto";
import type { ControlPlaneClient } from "../../control-plane-client.js";
import { CliError } from "../cli-error.js";
import { type CredentialFormat, formatCredential, formatTable, toIssuedCredential } from "../format.js";
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

function iso(t: Timestamp | undefined): string {
  return t === undefined ? "-" : timestampDate(t).toISOString();
}

/** Lists unexpired credentials (never secrets). */
export async function listCredentialsCommand(
  client: ControlPlaneClient,
  options: { principal: string; json: boolean },
  io: CliIo,
): Promise<void> {
  const { credentials } = await client.credentials.listCredentials({ principal: options.principal });
  if (options.json) {
    for (const c of credentials) io.out(`${toJsonString(CredentialInfoSchema, c, { alwaysEmitImplicit: true })}\n`);
    return;
  }
  if (credentials.length === 0) {
    io.err("tollgate: no unexpired credentials\n");
    return;
  }
  io.out(
    formatTable(
      ["CREDENTIAL ID", "ACCESS KEY ID", "PRINCIPAL", "CONNECTION", "EXPIRES", "REVOKED"],
      credentials.map((c) => [
        c.credentialId,
        c.accessKeyId,
        c.principal,
        c.connection,
        iso(c.expireTime),
        c.revoked ? "yes" : "no",
      ]),
    ),
  );
}

/** What `tollgate credentials revoke` revokes. */
export type RevokeTarget =
  | { credentialId: string }
  | { accessKeyId: string }
  | { principal: string; untilMs: number | undefined };

/** Revokes a credential or a principal; every edge refuses it within 5 s. */
export async function revokeCommand(client: ControlPlaneClient, target: RevokeTarget, io: CliIo): Promise<void> {
  try {
    if ("principal" in target) {
      const { revocation } = await client.credentials.revokePrincipal({
        principal: target.principal,
        ...(target.untilMs === undefined ? {} : { until: timestampFromMs(target.untilMs) }),
      });
      io.out(`revoked principal ${target.principal} until ${iso(revocation?.until)}\n`);
      return;
    }
    const { credential } = await client.credentials.revokeCredential(target);
    io.out(
      `revoked credential ${credential?.credentialId ?? ""} (${credential?.accessKeyId ?? ""}, principal ${credential?.principal ?? ""})\n`,
    );
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.NotFound) {
      throw new CliError("credential not found (unknown or already expired)");
    }
    throw error;
  }
}

/** Lists the revocations in force. */
export async function listRevocationsCommand(
  client: ControlPlaneClient,
  options: { json: boolean },
  io: CliIo,
): Promise<void> {
  const { revocations } = await client.credentials.listRevocations({});
  if (options.json) {
    for (const r of revocations) io.out(`${toJsonString(RevocationInfoSchema, r, { alwaysEmitImplicit: true })}\n`);
    return;
  }
  if (revocations.length === 0) {
    io.err("tollgate: no revocations in force\n");
    return;
  }
  io.out(
    formatTable(
      ["CREDENTIAL ID", "PRINCIPAL", "REVOKED", "UNTIL"],
      revocations.map((r) => [r.credentialId || "-", r.principal || "-", iso(r.revokeTime), iso(r.until)]),
    ),
  );
}
