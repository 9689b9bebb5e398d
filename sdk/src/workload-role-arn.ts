/**
 * Tollgate role ARNs: what an agent passes as `AWS_ROLE_ARN` (STS `RoleArn`) to exchange a web
 * identity token for a gateway credential of a connection:
 *
 *   arn:aws:iam::<accountId>:role/tollgate/<connection>
 *   arn:aws:iam::<accountId>:role/tollgate/<connection>/<rule>
 *
 * `<accountId>` is the connection's upstream account id (12 digits) or, when the connection has
 * none, any 12 digits (by convention `000000000000`). Without `<rule>` every trust rule of the
 * connection is tried; with it only that rule. Other partitions (`aws-cn`, `aws-us-gov`) are
 * accepted too, so the SDKs' ARN validation never gets in the way.
 */

/** Account id placed in ARNs of connections that have none. */
export const PLACEHOLDER_ACCOUNT_ID = "000000000000";

/** What a Tollgate role ARN names. */
export interface WorkloadRoleArn {
  partition: string;
  accountId: string;
  connection: string;
  /** Trust rule, when the ARN names one. */
  rule?: string;
}

const ROLE_ARN =
  /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/tollgate\/([a-z0-9][a-z0-9-]{0,62})(?:\/([a-z0-9][a-z0-9-]{0,62}))?$/;

/** Parses a Tollgate role ARN; undefined when `arn` is not one. */
export function parseWorkloadRoleArn(arn: string): WorkloadRoleArn | undefined {
  const m = ROLE_ARN.exec(arn);
  if (m === null) return undefined;
  const [, partition, accountId, connection, rule] = m;
  return {
    partition: partition as string,
    accountId: accountId as string,
    connection: connection as string,
    ...(rule !== undefined ? { rule } : {}),
  };
}

/** The role ARN of a connection (and optionally one of its trust rules). */
export function workloadRoleArn(connection: string, accountId: string, rule?: string): string {
  const account = /^\d{12}$/.test(accountId) ? accountId : PLACEHOLDER_ACCOUNT_ID;
  return `arn:aws:iam::${account}:role/tollgate/${connection}${rule !== undefined && rule !== "" ? `/${rule}` : ""}`;
}

/** STS `AssumedRoleUser.Arn` of a session: like AWS, the role's name (the connection) without its path. */
export function assumedRoleArn(role: WorkloadRoleArn, sessionName: string): string {
  return `arn:${role.partition}:sts::${role.accountId}:assumed-role/${role.connection}/${sessionName}`;
}
