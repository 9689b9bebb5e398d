/**
 * Runs the compatibility matrix (cases.ts): every row with its real client, in endpoint mode and in
 * HTTPS_PROXY mode, against one shared `tollgate dev --proxy-listen` per upstream kind, then asserts each
 * row's own audit events. Writes MATRIX.md.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateFunctionCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { CreateTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { type AuditEvent, Decision } from "@tollgate/proto";
import { type MotoServer, startMotoServer } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, countByName, waitForEvents } from "../support/audit.js";
import { type DevInstance, startDev } from "../support/dev-instance.js";
import { COMPAT_CASES } from "./cases.js";
import { AWS_CLI_BINARIES, runCliCall } from "./clients/aws-cli.js";
import { Boto3Driver } from "./clients/boto3.js";
import { runSdkCall } from "./clients/sdk-js-v3.js";
import {
  COMPAT_CLIENTS,
  COMPAT_MODES,
  type CompatCase,
  type CompatContext,
  type CompatMode,
  type CompatNeeds,
  type CompatOutcome,
  type CompatProxy,
  fillPlaceholders,
} from "./compat-case.js";
import { type CompatRowResult, renderMatrixReport, renderSummaryGrid } from "./matrix-report.js";

const INCLUDE_PENDING = process.env.COMPAT_INCLUDE_PENDING === "1";
/**
 * Comma-separated clients, modes or `client/mode`s to run (for local iteration, e.g. `boto3,sdk-js-v3/proxy`);
 * MATRIX.md is only written for full runs.
 */
const ONLY = (process.env.COMPAT_ONLY ?? "").split(",").filter((c) => c !== "");
const selected = (row: CompatCase): boolean =>
  ONLY.length === 0 || [row.client, row.mode, `${row.client}/${row.mode}`].some((k) => ONLY.includes(k));
const MATRIX_MD = join(import.meta.dirname, "MATRIX.md");

interface Upstream {
  moto: MotoServer;
  dev: DevInstance;
  proxy: CompatProxy;
  vars: Record<string, string>;
}

interface RowRun {
  row: CompatCase;
  index: number;
  principal: string;
  vars: Record<string, string>;
  outcome: CompatOutcome;
  events: AuditEvent[];
  ms: number;
}

const upstreams = new Map<CompatNeeds, Upstream>();
/** One boto3 process per upstream and mode (its environment holds the way to that edge). */
const boto3Drivers = new Map<`${CompatNeeds}/${CompatMode}`, Boto3Driver>();
const runs = new Map<number, RowRun>();
const results: CompatRowResult[] = [];
const timings: Record<string, number> = {};
let workDir = "";

/** Fixtures created directly at moto (not through the edge), so a row only depends on its own call. */
async function createFixtures(
  moto: MotoServer,
  dev: DevInstance,
  withLambda: boolean,
): Promise<Record<string, string>> {
  const cfg = {
    endpoint: moto.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey },
    maxAttempts: 1,
  };
  const s3 = new S3Client({ ...cfg, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: "compat-fx" }));
  await s3.send(new PutObjectCommand({ Bucket: "compat-fx", Key: "fixture.txt", Body: "fixture-content" }));
  const ddb = new DynamoDBClient(cfg);
  await ddb.send(
    new CreateTableCommand({
      TableName: "compat-fx",
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  await ddb.send(new PutItemCommand({ TableName: "compat-fx", Item: { pk: { S: "k1" }, v: { S: "fixture" } } }));
  await new SQSClient(cfg).send(new CreateQueueCommand({ QueueName: "compat-fx" }));
  const topic = await new SNSClient(cfg).send(new CreateTopicCommand({ Name: "compat-fx" }));
  await new SecretsManagerClient(cfg).send(
    new CreateSecretCommand({ Name: "compat-fx", SecretString: "s3cr3t-value" }),
  );
  await new SSMClient(cfg).send(new PutParameterCommand({ Name: "/compat/fx", Value: "param-value", Type: "String" }));
  const key = await new KMSClient(cfg).send(new CreateKeyCommand({}));
  const role = await new IAMClient(cfg).send(
    new CreateRoleCommand({
      RoleName: "compat-lambda-role",
      AssumeRolePolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
      }),
    }),
  );
  const roleArn = role.Role?.Arn ?? "";
  const zipFile = join(workDir, "function.zip");
  if (withLambda) {
    await new LambdaClient(cfg).send(
      new CreateFunctionCommand({
        FunctionName: "compat-fx",
        Runtime: "python3.11",
        Role: roleArn,
        Handler: "index.handler",
        Code: { ZipFile: new Uint8Array(readFileSync(zipFile)) },
      }),
    );
  }
  return {
    bucket: "compat-fx",
    table: "compat-fx",
    queueUrl: `${dev.edgeUrl}/${moto.accountId}/compat-fx`,
    topicArn: topic.TopicArn ?? "",
    secret: "compat-fx",
    param: "/compat/fx",
    keyId: key.KeyMetadata?.KeyId ?? "",
    function: "compat-fx",
    roleArn,
    account: moto.accountId,
    zipFile,
    smallFile: join(workDir, "small.txt"),
    bigFile: join(workDir, "big.bin"),
    workDir,
  };
}

async function startUpstream(needs: CompatNeeds): Promise<Upstream> {
  const moto = await startMotoServer({ verifySignatures: needs === "verifying-moto" });
  const dev = await startDev([
    "--proxy-listen",
    "127.0.0.1:0",
    "--upstream-endpoint",
    moto.endpoint,
    "--upstream-access-key-id",
    moto.accessKeyId,
    "--upstream-secret-access-key",
    moto.secretAccessKey,
  ]);
  const vars = await createFixtures(moto, dev, needs === "non-verifying-moto");
  const caFile = dev.demoEnv.AWS_CA_BUNDLE ?? "";
  const proxy = { url: dev.demoEnv.HTTPS_PROXY ?? "", caFile, caPem: readFileSync(caFile, "utf8") };
  return { moto, dev, proxy, vars };
}

function runClient(row: CompatCase, ctx: CompatContext): Promise<CompatOutcome> {
  switch (row.client) {
    case "sdk-js-v3":
      return runSdkCall(row.call, ctx);
    case "aws-cli-v1":
    case "aws-cli-v2":
      return runCliCall(AWS_CLI_BINARIES[row.client], row.call, ctx);
    case "boto3": {
      let driver = boto3Drivers.get(`${row.needs}/${row.mode}`);
      if (driver === undefined || !driver.alive) {
        driver = new Boto3Driver(ctx);
        boto3Drivers.set(`${row.needs}/${row.mode}`, driver);
      }
      return driver.run(row.call, ctx);
    }
  }
}

async function runRow(row: CompatCase, index: number): Promise<RowRun> {
  const upstream = upstreams.get(row.needs);
  if (upstream === undefined) throw new Error(`no upstream for ${row.needs}`);
  const principal = `compat-${index}`;
  const issued = await adminClient(upstream.dev).credentials.issueCredential({
    principal,
    connection: "default",
    ttlSeconds: 3600n,
  });
  const vars: Record<string, string> = { ...upstream.vars, n: String(index) };
  // Through the proxy, the queue has its AWS URL (the SQS clients send to the queue URL's host).
  if (row.mode === "proxy") vars.queueUrl = `https://sqs.us-east-1.amazonaws.com/${vars.account}/compat-fx`;
  const ctx: CompatContext = {
    mode: row.mode,
    edgeUrl: upstream.dev.edgeUrl,
    proxy: upstream.proxy,
    credential: {
      accessKeyId: issued.accessKeyId,
      secretAccessKey: issued.secretAccessKey,
      sessionToken: issued.sessionToken,
    },
    vars,
  };
  const started = Date.now();
  const outcome = await runClient(row, ctx);
  return { row, index, principal, vars, outcome, events: [], ms: Date.now() - started };
}

function expectedCounts(row: CompatCase): Record<string, number> {
  return typeof row.events === "string" ? { [row.events]: 1 } : row.events;
}

/** An expected ARN as a regex: `{account}` may be the account or blank, a trailing `*` matches any suffix. */
function resourcePattern(pattern: string, vars: Record<string, string>): RegExp {
  const marker = "\u0000ACCOUNT\u0000";
  const filled = fillPlaceholders(pattern, { ...vars, account: marker });
  const escaped = filled.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const source = escaped.replaceAll(marker, `(?:${vars.account ?? ""})?`).replace(/\\\*$/, ".*");
  return new RegExp(`^${source}$`);
}

/** Everything wrong with a row's run; empty when it passes. */
function problemsOf(run: RowRun): string[] {
  const { row, outcome, events, vars } = run;
  const problems: string[] = [];
  const want = row.output === undefined ? undefined : fillPlaceholders(row.output, vars);
  if (row.refusedWith !== undefined) {
    if (outcome.ok) problems.push(`client succeeded, expected the edge to refuse with ${row.refusedWith}`);
    else if (want !== undefined && !outcome.error.includes(want))
      problems.push(`error lacks "${want}": ${outcome.error}`);
  } else if (!outcome.ok) problems.push(`client error: ${outcome.error}`);
  else if (want !== undefined && !outcome.output.includes(want)) {
    problems.push(`output lacks "${want}": ${outcome.output.slice(0, 200)}`);
  }
  const counts = expectedCounts(row);
  const got = countByName(events);
  if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(counts).sort())) {
    problems.push(`events ${JSON.stringify(got)}, expected ${JSON.stringify(counts)}`);
  }
  const decision = row.refusedWith === undefined ? Decision.ALLOW : Decision.DENY;
  const errorCode = row.refusedWith ?? row.errorCode;
  for (const e of events) {
    if (e.tollgate?.decision !== decision) problems.push(`${e.eventName}: decision ${e.tollgate?.decision}`);
    if (e.errorCode !== errorCode) {
      problems.push(`${e.eventName}: errorCode ${e.errorCode} (${e.errorMessage ?? ""})`.slice(0, 300));
    }
  }
  // The way in: plain HTTP to the edge's endpoint, or TLS through the proxy with AWS's own host name.
  for (const e of events) {
    const host = e.tlsDetails?.clientProvidedHostHeader;
    if (row.mode === "endpoint" && host !== undefined) problems.push(`${e.eventName}: arrived over TLS as ${host}`);
    if (row.mode === "proxy" && !/^[a-z0-9.-]+\.amazonaws\.com$/.test(host ?? "")) {
      problems.push(`${e.eventName}: not through the proxy with an AWS host name (Host ${host ?? "none, no TLS"})`);
    }
  }
  for (const pattern of row.resources ?? []) {
    const re = resourcePattern(pattern, vars);
    for (const e of events) {
      if (!e.resources.some((r) => re.test(r.arn))) {
        const want = fillPlaceholders(pattern, vars);
        problems.push(`${e.eventName}: no resource ${want} in [${e.resources.map((r) => r.arn).join(", ")}]`);
      }
    }
  }
  return [...new Set(problems)];
}

const active = COMPAT_CASES.map((row, i) => ({ row, index: i + 1 })).filter(
  ({ row }) => (INCLUDE_PENDING || row.pending === undefined) && selected(row),
);

beforeAll(async () => {
  const t0 = Date.now();
  workDir = mkdtempSync(join(tmpdir(), "tollgate-compat-"));
  writeFileSync(join(workDir, "small.txt"), "small upload\n");
  writeFileSync(join(workDir, "big.bin"), Buffer.alloc(9 * 1024 * 1024, 1));
  execFileSync("python3", [
    "-c",
    "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('index.py', 'def handler(e, c):\\n    return e\\n')",
    join(workDir, "function.zip"),
  ]);
  const needed = [...new Set(active.map(({ row }) => row.needs))];
  const started = await Promise.all(needed.map((n) => startUpstream(n)));
  for (const [i, n] of needed.entries()) upstreams.set(n, started[i] as Upstream);
  timings.startup = Date.now() - t0;

  // One chain per client and mode, rows in table order; the chains run side by side.
  const t1 = Date.now();
  await Promise.all(
    COMPAT_CLIENTS.flatMap((client) =>
      COMPAT_MODES.map(async (mode) => {
        const tc = Date.now();
        for (const { row, index } of active.filter((a) => a.row.client === client && a.row.mode === mode)) {
          runs.set(index, await runRow(row, index));
        }
        timings[`${client}/${mode}`] = Date.now() - tc;
      }),
    ),
  );
  timings.calls = Date.now() - t1;

  const t2 = Date.now();
  await Promise.all(
    [...runs.values()].map(async (run) => {
      const dev = upstreams.get(run.row.needs)?.dev as DevInstance;
      const want = Object.values(expectedCounts(run.row)).reduce((a, b) => a + b, 0);
      run.events = await waitForEvents(dev, { principal: run.principal }, want, { timeoutMs: 10_000 });
    }),
  );
  timings.audit = Date.now() - t2;

  for (const [i, row] of COMPAT_CASES.entries()) {
    const run = runs.get(i + 1);
    if (!selected(row)) continue;
    const problems = run === undefined ? (row.pending === undefined ? ["not run"] : []) : problemsOf(run);
    // Row-specific names back to their placeholders, so MATRIX.md only changes with results.
    const hosts = [...new Set(run?.events.map((e) => e.tlsDetails?.clientProvidedHostHeader ?? "") ?? [])].map((h) =>
      h.replaceAll(`compat-${run?.index}.`, "compat-{n}.").replaceAll(`${run?.vars.bucket}.`, "{bucket}."),
    );
    const seen = { ms: run?.ms ?? 0, hosts: hosts.filter((h) => h !== "") };
    if (row.pending !== undefined) {
      results.push({
        row,
        status: "pending",
        problems,
        ...(run === undefined ? {} : { triedPasses: problems.length === 0 }),
        ...seen,
      });
    } else {
      results.push({ row, status: problems.length === 0 ? "pass" : "fail", problems, ...seen });
    }
  }
  timings.total = Date.now() - t0;
  // About 2 min on an idle 2-core machine; 9 min were seen with several other test suites running beside it.
}, 1_200_000);

afterAll(async () => {
  if (results.length > 0) {
    console.log(`\nCompatibility matrix\n${COMPAT_MODES.map((m) => renderSummaryGrid(results, m)).join("\n\n")}\n`);
    for (const r of results.filter((x) => x.status !== "pass")) {
      console.log(
        `${r.status.toUpperCase()} ${r.row.client} ${r.row.mode} ${r.row.service} ${r.row.operation}: ${
          r.status === "pending" ? `${r.row.pending}${r.triedPasses === true ? " — PASSES NOW" : ""} ` : ""
        }${r.problems.join("; ")}`,
      );
    }
    console.log(`timings: ${JSON.stringify(timings)}`);
    if (results.some((r) => r.status === "fail")) {
      for (const [needs, u] of upstreams) {
        console.log(
          `--- last edge/control-plane log lines (${needs}) ---\n${u.dev.logs().trim().split("\n").slice(-15).join("\n")}`,
        );
      }
    }
    if (results.length === COMPAT_CASES.length) writeFileSync(MATRIX_MD, renderMatrixReport(results));
  }
  for (const driver of boto3Drivers.values()) driver.close();
  await Promise.all(
    [...upstreams.values()].map(async (u) => {
      await u.dev.stop();
      await u.moto.close();
    }),
  );
  if (workDir !== "") rmSync(workDir, { recursive: true, force: true });
}, 60_000);

for (const client of COMPAT_CLIENTS) {
  for (const mode of COMPAT_MODES) {
    const asserted = [...COMPAT_CASES.entries()].filter(
      ([, row]) => row.client === client && row.mode === mode && row.pending === undefined && selected(row),
    );
    if (asserted.length === 0) continue;
    describe(`compat ${client} (${mode} mode)`, () => {
      for (const [i, row] of asserted) {
        it(`${row.service} ${row.operation}${row.needs === "non-verifying-moto" ? " (non-verifying moto)" : ""}`, () => {
          const run = runs.get(i + 1);
          expect(run, "row was run").toBeDefined();
          expect(run === undefined ? ["not run"] : problemsOf(run)).toEqual([]);
        });
      }
    });
  }
}
