import { readFileSync, writeFileSync } from "node:fs";
import { toJsonString } from "@bufbuild/protobuf";
import { type ServiceAccount, ServiceAccountSchema, type TrustRule, TrustRuleSchema } from "@tollgate/proto";
import type { ControlPlaneClient } from "../../control-plane-client.js";
import { CliError } from "../cli-error.js";
import { type CredentialFormat, formatCredential, toIssuedCredential } from "../format.js";
import type { CliIo } from "../io.js";

/** Options of `tollgate trust create`. */
export interface TrustCreateOptions {
  name: string;
  connection: string;
  issuer: string;
  jwksUrl: string;
  audiences: string[];
  subject: string;
  /** `claim=glob` */
  claims: string[];
  /** `claim=regex` */
  claimRegexes: string[];
  principal: string;
  groupsClaim: string;
  maxTtlSeconds: number;
  replace: boolean;
}

function splitCondition(value: string, flag: string): [string, string] {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new CliError(`${flag} must be CLAIM=PATTERN, got ${JSON.stringify(value)}`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** Creates a trust rule and prints the role ARN agents use. */
export async function trustCreateCommand(client: ControlPlaneClient, o: TrustCreateOptions, io: CliIo): Promise<void> {
  const conditions = [
    ...o.claims.map((c) => {
      const [claim, glob] = splitCondition(c, "--claim");
      return { claim, glob, regex: "" };
    }),
    ...o.claimRegexes.map((c) => {
      const [claim, regex] = splitCondition(c, "--claim-regex");
      return { claim, glob: "", regex };
    }),
  ];
  const response = await client.workload.createTrustRule({
    rule: {
      connection: o.connection,
      name: o.name,
      issuer: o.issuer,
      jwksUrl: o.jwksUrl,
      audiences: o.audiences,
      subjectPattern: o.subject,
      conditions,
      principalTemplate: o.principal,
      groupsClaim: o.groupsClaim,
      maxTtlSeconds: BigInt(o.maxTtlSeconds),
    },
    replace: o.replace,
  });
  io.out(`${o.replace ? "saved" : "created"} trust rule ${o.connection}/${o.name}\n`);
  io.out(`role ARN: ${response.roleArn}\n`);
}

function ruleLine(r: TrustRule): string {
  const conditions = r.conditions.map((c) => (c.glob !== "" ? `${c.claim}=${c.glob}` : `${c.claim}~${c.regex}`));
  return [
    `${r.connection}/${r.name}`,
    `issuer=${r.issuer}`,
    `aud=${r.audiences.join(",")}`,
    `sub=${r.subjectPattern || "*"}`,
    ...(conditions.length > 0 ? [`claims=${conditions.join(",")}`] : []),
    `principal=${r.principalTemplate}`,
    ...(r.groupsClaim !== "" ? [`groups=${r.groupsClaim}`] : []),
    `maxTtl=${r.maxTtlSeconds}s`,
    ...(r.jwksUrl !== "" ? [`jwks=${r.jwksUrl}`] : []),
  ].join("  ");
}

/** Lists trust rules. */
export async function trustListCommand(
  client: ControlPlaneClient,
  o: { connection: string; json: boolean },
  io: CliIo,
): Promise<void> {
  const { rules } = await client.workload.listTrustRules({ connection: o.connection });
  if (o.json) {
    for (const r of rules) io.out(`${toJsonString(TrustRuleSchema, r)}\n`);
  } else if (rules.length === 0) {
    io.err("tollgate: no trust rules (create one with: tollgate trust create NAME --connection C ...)\n");
  } else {
    for (const r of rules) io.out(`${ruleLine(r)}\n`);
  }
}

/** Deletes a trust rule. */
export async function trustDeleteCommand(
  client: ControlPlaneClient,
  o: { name: string; connection: string },
  io: CliIo,
): Promise<void> {
  await client.workload.deleteTrustRule({ connection: o.connection, name: o.name });
  io.out(`deleted trust rule ${o.connection}/${o.name}\n`);
}

/** Options of `tollgate service-account create`. */
export interface ServiceAccountCreateOptions {
  name: string;
  connection: string;
  principal: string;
  ttlSeconds: number;
  /** Write the API key to this file (mode 0600) instead of stdout. */
  apiKeyFile?: string;
}

/** Creates a service account; its API key is printed (or written) once and never again. */
export async function serviceAccountCreateCommand(
  client: ControlPlaneClient,
  o: ServiceAccountCreateOptions,
  io: CliIo,
): Promise<void> {
  const response = await client.workload.createServiceAccount({
    name: o.name,
    connection: o.connection,
    principal: o.principal,
    credentialTtlSeconds: BigInt(o.ttlSeconds),
  });
  const sa = response.serviceAccount;
  if (o.apiKeyFile !== undefined) {
    writeFileSync(o.apiKeyFile, `${response.apiKey}\n`, { mode: 0o600, flag: "wx" });
    io.err(
      `tollgate: created service account ${o.name} (principal ${sa?.principal ?? ""}); API key written to ${o.apiKeyFile}\n`,
    );
  } else {
    io.err(
      `tollgate: created service account ${o.name} (principal ${sa?.principal ?? ""}); the API key below is shown only once\n`,
    );
    io.out(`${response.apiKey}\n`);
  }
}

function accountLine(a: ServiceAccount): string {
  return [
    a.name,
    `connection=${a.connection}`,
    `principal=${a.principal}`,
    `key=${a.keyId}`,
    `ttl=${a.credentialTtlSeconds}s`,
    `created=${new Date(Number(a.createTimeMs)).toISOString()}`,
  ].join("  ");
}

/** Lists service accounts (never their keys). */
export async function serviceAccountListCommand(
  client: ControlPlaneClient,
  o: { json: boolean },
  io: CliIo,
): Promise<void> {
  const { serviceAccounts } = await client.workload.listServiceAccounts({});
  if (o.json) {
    for (const a of serviceAccounts) io.out(`${toJsonString(ServiceAccountSchema, a)}\n`);
  } else if (serviceAccounts.length === 0) {
    io.err("tollgate: no service accounts (create one with: tollgate service-account create NAME --connection C)\n");
  } else {
    for (const a of serviceAccounts) io.out(`${accountLine(a)}\n`);
  }
}

/** Deletes a service account: its API key stops working at once. */
export async function serviceAccountDeleteCommand(
  client: ControlPlaneClient,
  o: { name: string },
  io: CliIo,
): Promise<void> {
  await client.workload.deleteServiceAccount({ name: o.name });
  io.out(`deleted service account ${o.name}\n`);
}

/** Replaces a service account's API key; the new one is printed (or written) once. */
export async function serviceAccountRotateKeyCommand(
  client: ControlPlaneClient,
  o: { name: string; apiKeyFile?: string },
  io: CliIo,
): Promise<void> {
  const response = await client.workload.rotateServiceAccountKey({ name: o.name });
  if (o.apiKeyFile !== undefined) {
    writeFileSync(o.apiKeyFile, `${response.apiKey}\n`, { mode: 0o600, flag: "wx" });
    io.err(`tollgate: new API key of ${o.name} written to ${o.apiKeyFile}; the old key no longer works\n`);
  } else {
    io.err(`tollgate: new API key of ${o.name} (shown only once); the old key no longer works\n`);
    io.out(`${response.apiKey}\n`);
  }
}

/** Reads an API key file (first line, trimmed). */
export function readApiKeyFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new CliError(`cannot read the API key file ${path}`);
  }
  const key = text.split(/\r?\n/)[0]?.trim() ?? "";
  if (key === "") throw new CliError(`the API key file ${path} is empty`);
  return key;
}

/** Exchanges a service account's API key for a gateway credential and prints it. */
export async function issueServiceAccountCredentialCommand(
  client: ControlPlaneClient,
  o: { ttlSeconds: number; format: CredentialFormat },
  io: CliIo,
): Promise<void> {
  const response = await client.serviceAccountCredentials.issueServiceAccountCredential({
    ttlSeconds: BigInt(o.ttlSeconds),
  });
  if (response.credential === undefined) throw new CliError("the control plane returned no credential");
  io.out(formatCredential(toIssuedCredential(response.credential), o.format));
}
