import { toJsonString } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  type AuditEvent,
  type Connection,
  ConnectionSchema,
  Decision,
  type IssueCredentialResponse,
} from "@tollgate/proto";

/** A gateway credential as the CLI prints it. */
export interface IssuedCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  principal: string;
  connection: string;
  credentialId: string;
}

/** Output formats of `tollgate credentials issue`. */
export const CREDENTIAL_FORMATS = ["env", "json", "credential-process"] as const;
export type CredentialFormat = (typeof CREDENTIAL_FORMATS)[number];

/** Converts the CredentialService response. */
export function toIssuedCredential(response: IssueCredentialResponse): IssuedCredential {
  return {
    accessKeyId: response.accessKeyId,
    secretAccessKey: response.secretAccessKey,
    sessionToken: response.sessionToken,
    expiration: response.expireTime === undefined ? new Date(0) : timestampDate(response.expireTime),
    principal: response.principal,
    connection: response.connection,
    credentialId: response.credentialId,
  };
}

/** Quotes a value for POSIX shells, leaving plain values (keys, URLs, tokens) bare. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `export NAME=value`, quoted for the shell. */
export function exportLine(name: string, value: string): string {
  return `export ${name}=${shellQuote(value)}`;
}

/** The credential's `export` lines (without a trailing newline). */
function credentialExports(credential: IssuedCredential): string[] {
  return [
    exportLine("AWS_ACCESS_KEY_ID", credential.accessKeyId),
    exportLine("AWS_SECRET_ACCESS_KEY", credential.secretAccessKey),
    exportLine("AWS_SESSION_TOKEN", credential.sessionToken),
  ];
}

/** Formats an issued credential; the result ends with a newline. */
export function formatCredential(credential: IssuedCredential, format: CredentialFormat): string {
  switch (format) {
    case "env":
      return `${[...credentialExports(credential), `# expires ${credential.expiration.toISOString()}`].join("\n")}\n`;
    case "json":
      return `${JSON.stringify({
        accessKeyId: credential.accessKeyId,
        secretAccessKey: credential.secretAccessKey,
        sessionToken: credential.sessionToken,
        expiration: credential.expiration.toISOString(),
        principal: credential.principal,
        connection: credential.connection,
        credentialId: credential.credentialId,
      })}\n`;
    case "credential-process":
      // https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html
      return `${JSON.stringify({
        Version: 1,
        AccessKeyId: credential.accessKeyId,
        SecretAccessKey: credential.secretAccessKey,
        SessionToken: credential.sessionToken,
        Expiration: credential.expiration.toISOString(),
      })}\n`;
  }
}

/** What `tollgate dev` prints once everything runs. */
export interface DevReadyInfo {
  edgeUrl: string;
  apiUrl: string;
  region: string;
  credential: IssuedCredential;
}

/** The banner of `tollgate dev`: ready line, exports for the demo agent, a command to try. */
export function formatDevReady(info: DevReadyInfo): string {
  return `${[
    `tollgate: ready edge=${info.edgeUrl} api=${info.apiUrl}`,
    exportLine("AWS_ENDPOINT_URL", info.edgeUrl),
    ...credentialExports(info.credential),
    exportLine("AWS_REGION", info.region),
    exportLine("AWS_DEFAULT_REGION", info.region),
    "# try:",
    "aws s3 mb s3://demo-bucket && aws s3 ls",
  ].join("\n")}\n`;
}

function decisionName(event: AuditEvent): string {
  switch (event.tollgate?.decision) {
    case Decision.ALLOW:
      return "allow";
    case Decision.DENY:
      return "deny";
    default:
      return "-";
  }
}

function serviceName(event: AuditEvent): string {
  return event.tollgate?.signingName || event.eventSource.split(".")[0] || "-";
}

function orDash(value: string | undefined): string {
  return value === undefined || value === "" ? "-" : value;
}

interface EventColumns {
  time: string;
  principal: string;
  service: string;
  operation: string;
  decision: string;
  status: string;
  durationMs: string;
  error: string;
  resources: string;
}

function eventColumns(event: AuditEvent): EventColumns {
  const status = event.tollgate?.httpStatus;
  return {
    time: orDash(event.eventTime),
    principal: orDash(event.userIdentity?.principalId),
    service: serviceName(event),
    operation: orDash(event.eventName),
    decision: decisionName(event),
    status: status === undefined || status === 0 ? "-" : String(status),
    durationMs: `${Math.round(event.tollgate?.durationMs ?? 0)}ms`,
    error: orDash(event.errorCode),
    resources: event.resources.map((r) => r.arn).join(",") || "-",
  };
}

/**
 * One line per event, for tails:
 * `2026-11-27T07:00:00.123Z demo-agent s3 PutObject allow 200 12ms arn:aws:s3:::demo-bucket/x`.
 * The error code, when there is one, comes before the resources.
 */
export function formatEventLine(event: AuditEvent): string {
  const c = eventColumns(event);
  const parts = [c.time, c.principal, c.service, c.operation, c.decision, c.status, c.durationMs];
  if (c.error !== "-") parts.push(c.error);
  if (c.resources !== "-") parts.push(c.resources);
  return parts.join(" ");
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

/** The human table of `tollgate audit query`. */
export function formatEventTable(events: readonly AuditEvent[]): string {
  return formatTable(
    ["TIME", "PRINCIPAL", "SERVICE", "OPERATION", "DECISION", "STATUS", "ERROR", "RESOURCES"],
    events.map((event) => {
      const c = eventColumns(event);
      return [c.time, c.principal, c.service, c.operation, c.decision, c.status, c.error, c.resources];
    }),
  );
}

/** A connection as one JSON line (it never holds the upstream secret, only `hasUpstreamSecret`). */
export function formatConnectionJson(connection: Connection): string {
  return `${toJsonString(ConnectionSchema, connection, { alwaysEmitImplicit: true })}\n`;
}

/** The human table of `tollgate connection list`. */
export function formatConnectionTable(connections: readonly Connection[]): string {
  return formatTable(
    ["NAME", "REGION", "ACCOUNT", "UPSTREAM", "ACCESS KEY ID", "SECRET"],
    connections.map((c) => [
      c.name,
      orDash(c.region),
      orDash(c.accountId),
      c.upstreamEndpoint || "aws",
      orDash(c.upstreamAccessKeyId),
      c.hasUpstreamSecret ? "stored" : "none",
    ]),
  );
}

/** `key: value` lines describing one connection, for `tollgate connection get`. */
export function formatConnectionDetails(connection: Connection): string {
  const time = (t: Connection["createTime"]): string => (t === undefined ? "-" : timestampDate(t).toISOString());
  return formatTable(
    ["name:", connection.name],
    [
      ["region:", orDash(connection.region)],
      ["account id:", orDash(connection.accountId)],
      ["upstream endpoint:", connection.upstreamEndpoint || "(real AWS)"],
      ["upstream access key id:", orDash(connection.upstreamAccessKeyId)],
      ["upstream secret:", connection.hasUpstreamSecret ? "stored" : "none"],
      ["credential source:", connection.credentialSource === 2 ? "edge" : "static"],
      ["role arn:", orDash(connection.roleArn)],
      ["created:", time(connection.createTime)],
      ["updated:", time(connection.updateTime)],
    ],
  );
}
