// HTTPS_PROXY mode (clients keep AWS's default endpoints) and endpoint mode over TLS, with real
// clients against the signature-verifying moto that `tollgate dev` starts as the upstream.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { TollgateCa } from "@tollgate/edge-agent";
import { Decision } from "@tollgate/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countByName, queryAll, waitForEvents } from "./support/audit.js";
import { ConnectTunnelAgent, rawConnect } from "./support/connect-tunnel-agent.js";
import { type DevInstance, runProcess, startDev } from "./support/dev-instance.js";

interface IssuedCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

async function issue(dev: DevInstance, principal: string): Promise<IssuedCredential> {
  const r = await dev.cli(["credentials", "issue", "--principal", principal, "--ttl", "1h", "--format", "json"]);
  expect(r.code, r.stderr).toBe(0);
  const { accessKeyId, secretAccessKey, sessionToken } = JSON.parse(r.stdout) as IssuedCredential;
  return { accessKeyId, secretAccessKey, sessionToken };
}

/** Env for the aws CLI / boto3: gateway credential, no endpoint override, nothing from ~/.aws. */
function pythonClientEnv(dev: DevInstance, cred: IssuedCredential, extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dev.home,
    AWS_ACCESS_KEY_ID: cred.accessKeyId,
    AWS_SECRET_ACCESS_KEY: cred.secretAccessKey,
    AWS_SESSION_TOKEN: cred.sessionToken,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_MAX_ATTEMPTS: "1",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    ...extra,
  };
}

function expectAllowedCalls(events: Awaited<ReturnType<typeof queryAll>>, principal: string): void {
  for (const e of events) {
    expect(e.userIdentity?.principalId).toBe(principal);
    expect(e.tollgate?.decision, `${e.eventName} allowed`).toBe(Decision.ALLOW);
    expect(e.tollgate?.httpStatus, `${e.eventName} status`).toBeLessThan(300);
    expect(e.errorCode, `${e.eventName} error`).toBeUndefined();
  }
}

describe("HTTPS_PROXY mode (tollgate dev --proxy-listen)", () => {
  let dev: DevInstance;
  let proxyUrl: string;
  let caFile: string;
  let ca: string;

  beforeAll(async () => {
    dev = await startDev(["--proxy-listen", "127.0.0.1:0"]);
    proxyUrl = dev.demoEnv.HTTPS_PROXY as string;
    caFile = dev.demoEnv.AWS_CA_BUNDLE as string;
    ca = readFileSync(caFile, "utf8");
  });

  afterAll(async () => {
    await dev?.stop();
  });

  it("prints the proxy exports after the unchanged endpoint-mode block", () => {
    const i = dev.stdout.findIndex((l) => l.startsWith("tollgate: ready edge="));
    expect(dev.stdout.slice(i, i + 10).map((l) => l.replace(/=.*/, "="))).toEqual([
      "tollgate: ready edge=",
      "export AWS_ENDPOINT_URL=",
      "export AWS_ACCESS_KEY_ID=",
      "export AWS_SECRET_ACCESS_KEY=",
      "export AWS_SESSION_TOKEN=",
      "export AWS_REGION=",
      "export AWS_DEFAULT_REGION=",
      "# try:",
      "aws s3 mb s3://demo-bucket && aws s3 ls",
      "# HTTPS_PROXY mode (default AWS endpoints; unset AWS_ENDPOINT_URL to use it):",
    ]);
    expect(proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(caFile).toBe(join(dev.home, "ca.pem"));
    expect(dev.demoEnv.NODE_EXTRA_CA_CERTS).toBe(caFile);
    expect(ca).toContain("BEGIN CERTIFICATE");
    expect(readFileSync(join(dev.home, "edge", "ca-key.pem"), "utf8")).toContain("BEGIN PRIVATE KEY");
  });

  // client | service | operation: each row is one CLI invocation and the audit events it must produce.
  it("aws CLI v1 with default endpoints: s3 mb/cp/ls, sts, dynamodb — each call audited once", async () => {
    const cred = await issue(dev, "proxy-cli");
    const env = pythonClientEnv(dev, cred, { HTTPS_PROXY: proxyUrl, AWS_CA_BUNDLE: caFile });
    const file = join(dev.home, "cli-upload.txt");
    writeFileSync(file, "through the proxy\n");
    const rows: Array<[args: string[], events: string[], check?: (stdout: string) => void]> = [
      [["sts", "get-caller-identity"], ["GetCallerIdentity"], (o) => expect(o).toContain("user/tollgate-demo")],
      [["dynamodb", "list-tables"], ["ListTables"], (o) => expect(o).toContain("TableNames")],
      [["s3", "mb", "s3://proxy-cli-bucket"], ["CreateBucket"]],
      [["s3", "cp", file, "s3://proxy-cli-bucket/dir/up.txt"], ["PutObject"]],
      [
        ["s3", "cp", "s3://proxy-cli-bucket/dir/up.txt", "-"],
        ["HeadObject", "GetObject"],
        (o) => expect(o).toBe("through the proxy\n"),
      ],
      [["s3", "ls"], ["ListBuckets"], (o) => expect(o).toContain("proxy-cli-bucket")],
      [
        ["s3api", "list-objects-v2", "--bucket", "proxy-cli-bucket"],
        ["ListObjectsV2"],
        (o) => expect(o).toContain("dir/up.txt"),
      ],
    ];
    const expected: Record<string, number> = {};
    for (const [args, events, check] of rows) {
      const r = await runProcess("aws", args, env);
      expect(r.code, `aws ${args.join(" ")}: ${r.stderr}`).toBe(0);
      check?.(r.stdout);
      for (const name of events) expected[name] = (expected[name] ?? 0) + 1;
    }
    const events = await waitForEvents(dev, { principal: "proxy-cli" }, 8);
    expect(countByName(events)).toEqual(expected);
    expectAllowedCalls(events, "proxy-cli");
    const put = events.find((e) => e.eventName === "PutObject");
    expect(put?.resources.map((r) => r.arn)).toContain("arn:aws:s3:::proxy-cli-bucket/dir/up.txt");
    expect(events.find((e) => e.eventName === "CreateBucket")?.resources.map((r) => r.arn)).toContain(
      "arn:aws:s3:::proxy-cli-bucket",
    );
  });

  it("boto3 with default endpoints (virtual-hosted S3, DynamoDB, STS) — each call audited once", async () => {
    const cred = await issue(dev, "proxy-boto3");
    const script = `
import boto3, json
s3 = boto3.client("s3", region_name="us-east-1")
s3.create_bucket(Bucket="proxy-boto3-bucket")
s3.put_object(Bucket="proxy-boto3-bucket", Key="k/one.txt", Body=b"from boto3")
body = s3.get_object(Bucket="proxy-boto3-bucket", Key="k/one.txt")["Body"].read().decode()
ddb = boto3.client("dynamodb", region_name="us-east-1")
ddb.create_table(TableName="proxy-boto3-table", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
  KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
tables = ddb.list_tables()["TableNames"]
arn = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
print(json.dumps({"body": body, "tables": tables, "arn": arn, "s3host": s3.meta.endpoint_url}))
`;
    const r = await runProcess(
      "python3",
      ["-c", script],
      pythonClientEnv(dev, cred, { HTTPS_PROXY: proxyUrl, AWS_CA_BUNDLE: caFile }),
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { body: string; tables: string[]; arn: string; s3host: string };
    expect(out.body).toBe("from boto3");
    expect(out.tables).toContain("proxy-boto3-table");
    expect(out.arn).toMatch(/user\/tollgate-demo$/);
    expect(out.s3host).toMatch(/^https:\/\/s3\.(us-east-1\.)?amazonaws\.com$/);

    const events = await waitForEvents(dev, { principal: "proxy-boto3" }, 6);
    expect(countByName(events)).toEqual({
      CreateBucket: 1,
      PutObject: 1,
      GetObject: 1,
      CreateTable: 1,
      ListTables: 1,
      GetCallerIdentity: 1,
    });
    expectAllowedCalls(events, "proxy-boto3");
    expect(events.find((e) => e.eventName === "GetObject")?.resources.map((r) => r.arn)).toContain(
      "arn:aws:s3:::proxy-boto3-bucket/k/one.txt",
    );
  });

  it("AWS SDK v3 through a CONNECT agent: virtual-hosted S3 put/get and DynamoDB — each call audited once", async () => {
    const cred = await issue(dev, "proxy-sdk");
    const agent = new ConnectTunnelAgent(proxyUrl, { ca });
    const config = {
      region: "us-east-1",
      credentials: cred,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
    };
    const s3 = new S3Client(config);
    const ddb = new DynamoDBClient(config);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "proxy-sdk-bucket" }));
      await s3.send(new PutObjectCommand({ Bucket: "proxy-sdk-bucket", Key: "a/b c.txt", Body: "from sdk v3" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "proxy-sdk-bucket", Key: "a/b c.txt" }));
      expect(await got.Body?.transformToString()).toBe("from sdk v3");
      await ddb.send(
        new CreateTableCommand({
          TableName: "proxy-sdk-table",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
      await ddb.send(new PutItemCommand({ TableName: "proxy-sdk-table", Item: { pk: { S: "k" }, v: { S: "v1" } } }));
      const item = await ddb.send(new GetItemCommand({ TableName: "proxy-sdk-table", Key: { pk: { S: "k" } } }));
      expect(item.Item?.v?.S).toBe("v1");
      expect((await ddb.send(new ListTablesCommand({}))).TableNames).toContain("proxy-sdk-table");
    } finally {
      s3.destroy();
      ddb.destroy();
      agent.destroy();
    }
    // The SDK kept AWS's own host names: the tunnels prove it (virtual-hosted S3 included).
    expect(new Set(agent.tunnels)).toEqual(
      new Set(["proxy-sdk-bucket.s3.us-east-1.amazonaws.com:443", "dynamodb.us-east-1.amazonaws.com:443"]),
    );
    const events = await waitForEvents(dev, { principal: "proxy-sdk" }, 7);
    expect(countByName(events)).toEqual({
      CreateBucket: 1,
      PutObject: 1,
      GetObject: 1,
      CreateTable: 1,
      PutItem: 1,
      GetItem: 1,
      ListTables: 1,
    });
    expectAllowedCalls(events, "proxy-sdk");
    expect(events.find((e) => e.eventName === "PutObject")?.resources.map((r) => r.arn)).toContain(
      "arn:aws:s3:::proxy-sdk-bucket/a/b c.txt",
    );
  });

  it("refuses non-AWS hosts and non-443 ports without opening a tunnel or writing an audit event", async () => {
    // A real listener the proxy must never connect to.
    let reached = 0;
    const bystander = net.createServer((s) => {
      reached++;
      s.destroy();
    });
    await new Promise<void>((r) => bystander.listen(0, "127.0.0.1", r));
    const bystanderPort = (bystander.address() as net.AddressInfo).port;
    const before = (await queryAll(dev, {})).length;
    try {
      const rows: Array<[authority: string, status: number, text: string]> = [
        ["example.com:443", 403, "example.com is not an AWS endpoint"],
        [`127.0.0.1:${bystanderPort}`, 403, "127.0.0.1 is not an AWS endpoint"],
        [`localhost:${bystanderPort}`, 403, "localhost is not an AWS endpoint"],
        ["s3.amazonaws.com:8443", 403, "only port 443"],
        ["sts.amazonaws.com:22", 403, "only port 443"],
      ];
      for (const [authority, status, text] of rows) {
        const r = await rawConnect(proxyUrl, authority);
        expect(r.status, authority).toBe(status);
        expect(r.body, authority).toContain(text);
      }
      // An SDK pointed at a non-AWS host through the proxy fails at CONNECT.
      const agent = new ConnectTunnelAgent(proxyUrl, { ca });
      const s3 = new S3Client({
        region: "us-east-1",
        endpoint: "https://storage.example.com",
        forcePathStyle: true,
        credentials: await issue(dev, "proxy-refused"),
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
      });
      await expect(s3.send(new CreateBucketCommand({ Bucket: "never" }))).rejects.toThrow(/403/);
      s3.destroy();
      agent.destroy();
    } finally {
      await new Promise((r) => bystander.close(r));
    }
    expect(reached).toBe(0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await queryAll(dev, {})).length).toBe(before);
    const refusals = dev
      .logs()
      .split("\n")
      .filter((l) => l.includes('"event":"proxy-refused"'));
    expect(refusals.some((l) => l.includes("example.com:443"))).toBe(true);
    expect(refusals.some((l) => l.includes("storage.example.com:443"))).toBe(true);
  });
});

describe("endpoint mode over TLS (TOLLGATE_EDGE_TLS_CERT_FILE/KEY_FILE)", () => {
  let dev: DevInstance;
  let dir: string;
  let ca: TollgateCa;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tollgate-tls-"));
    ca = await TollgateCa.loadOrCreate({ keyFile: join(dir, "ca-key.pem"), certFile: join(dir, "ca.pem") });
    const server = await ca.issueServerCertificate(["localhost", "127.0.0.1"]);
    writeFileSync(join(dir, "edge.pem"), server.certPem);
    writeFileSync(join(dir, "edge-key.pem"), server.keyPem, { mode: 0o600 });
    dev = await startDev([], {
      TOLLGATE_EDGE_TLS_CERT_FILE: join(dir, "edge.pem"),
      TOLLGATE_EDGE_TLS_KEY_FILE: join(dir, "edge-key.pem"),
    });
  });

  afterAll(async () => {
    await dev?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("serves https, and SDK v3 and the aws CLI trusting the CA are audited once per call", async () => {
    expect(dev.edgeUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(dev.demoEnv.AWS_ENDPOINT_URL).toBe(dev.edgeUrl);
    const cred = await issue(dev, "tls-sdk");
    const agent = new https.Agent({ ca: ca.certificatePem, keepAlive: true });
    const config = {
      region: "us-east-1",
      endpoint: dev.edgeUrl,
      credentials: cred,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
    };
    const s3 = new S3Client({ ...config, forcePathStyle: true });
    const sts = new STSClient(config);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "tls-bucket" }));
      await s3.send(new PutObjectCommand({ Bucket: "tls-bucket", Key: "x.txt", Body: "over tls" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "tls-bucket", Key: "x.txt" }));
      expect(await got.Body?.transformToString()).toBe("over tls");
      expect((await sts.send(new GetCallerIdentityCommand({}))).Arn).toMatch(/user\/tollgate-demo$/);
    } finally {
      s3.destroy();
      sts.destroy();
      agent.destroy();
    }

    // Without the CA the certificate is refused: TLS is really on.
    const untrusting = new STSClient({
      ...config,
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent() }),
    });
    await expect(untrusting.send(new GetCallerIdentityCommand({}))).rejects.toThrow(/certificate/i);
    untrusting.destroy();

    const cli = await runProcess(
      "aws",
      ["dynamodb", "list-tables"],
      pythonClientEnv(dev, await issue(dev, "tls-cli"), {
        AWS_ENDPOINT_URL: dev.edgeUrl,
        AWS_CA_BUNDLE: join(dir, "ca.pem"),
      }),
    );
    expect(cli.code, cli.stderr).toBe(0);

    const events = await waitForEvents(dev, { principal: "tls-sdk" }, 4);
    expect(countByName(events)).toEqual({ CreateBucket: 1, PutObject: 1, GetObject: 1, GetCallerIdentity: 1 });
    expectAllowedCalls(events, "tls-sdk");
    const cliEvents = await waitForEvents(dev, { principal: "tls-cli" }, 1);
    expect(countByName(cliEvents)).toEqual({ ListTables: 1 });
  });
});
