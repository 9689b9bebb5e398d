import { join } from "node:path";
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Decision } from "@tollgate/proto";
import { auditEventFromJson, issueGatewayCredential } from "@tollgate/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countByName, queryAll, waitForEvents } from "./support/audit.js";
import { type DevInstance, NATS_URL, runProcess, startDev } from "./support/dev-instance.js";
import { enrolledEdgeClient } from "./support/tollgate-processes.js";

interface IssuedCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  principal: string;
  connection: string;
}

let dev: DevInstance;
const gatewaySecrets: string[] = [];

async function issue(principal: string): Promise<IssuedCredential> {
  const r = await dev.cli(["credentials", "issue", "--principal", principal, "--ttl", "1h", "--format", "json"]);
  expect(r.code, r.stderr).toBe(0);
  const cred = JSON.parse(r.stdout) as IssuedCredential;
  gatewaySecrets.push(cred.secretAccessKey);
  return cred;
}

function sdkConfig(cred: IssuedCredential) {
  return {
    endpoint: dev.edgeUrl,
    region: "us-east-1",
    credentials: {
      accessKeyId: cred.accessKeyId,
      secretAccessKey: cred.secretAccessKey,
      sessionToken: cred.sessionToken,
    },
    maxAttempts: 1,
  };
}

beforeAll(async () => {
  dev = await startDev();
  gatewaySecrets.push(dev.demoEnv.AWS_SECRET_ACCESS_KEY as string);
});

afterAll(async () => {
  await dev?.stop();
});

describe("tollgate dev", () => {
  it("prints the ready line, the demo credential exports and a sample command", () => {
    const readyIdx = dev.stdout.findIndex((l) => l.startsWith("tollgate: ready edge="));
    expect(readyIdx).toBeGreaterThanOrEqual(0);
    expect(dev.stdout[readyIdx]).toMatch(
      /^tollgate: ready edge=http:\/\/127\.0\.0\.1:\d+ api=http:\/\/127\.0\.0\.1:\d+$/,
    );
    expect(dev.demoEnv.AWS_ENDPOINT_URL).toBe(dev.edgeUrl);
    expect(dev.demoEnv.AWS_ACCESS_KEY_ID).toMatch(/^TGIA[A-Z2-7]{16}$/);
    expect(dev.demoEnv.AWS_SESSION_TOKEN).toMatch(/^tg1\./);
    expect(dev.stdout.some((l) => /aws s3 (ls|mb)/.test(l))).toBe(true);
  });
});

describe("AWS SDK v3 through the edge, against signature-verifying moto", () => {
  it("S3, DynamoDB and STS calls succeed and each produces exactly one audit event", async () => {
    const cred = await issue("sdk-agent");
    const s3 = new S3Client({ ...sdkConfig(cred), forcePathStyle: true });
    const ddb = new DynamoDBClient(sdkConfig(cred));
    const sts = new STSClient(sdkConfig(cred));

    await s3.send(new CreateBucketCommand({ Bucket: "e2e-sdk-bucket" }));
    await s3.send(new PutObjectCommand({ Bucket: "e2e-sdk-bucket", Key: "dir/hello.txt", Body: "hello tollgate" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "e2e-sdk-bucket", Key: "dir/hello.txt" }));
    expect(await got.Body?.transformToString()).toBe("hello tollgate");
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "e2e-sdk-bucket" }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(["dir/hello.txt"]);
    await s3.send(new DeleteObjectCommand({ Bucket: "e2e-sdk-bucket", Key: "dir/hello.txt" }));

    await ddb.send(
      new CreateTableCommand({
        TableName: "e2e-table",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    await ddb.send(new PutItemCommand({ TableName: "e2e-table", Item: { pk: { S: "k1" }, v: { S: "value-1" } } }));
    const item = await ddb.send(new GetItemCommand({ TableName: "e2e-table", Key: { pk: { S: "k1" } } }));
    expect(item.Item?.v?.S).toBe("value-1");

    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toMatch(/^arn:aws:iam::\d{12}:user\/tollgate-demo$/);

    const events = await waitForEvents(dev, { principal: "sdk-agent" }, 9);
    expect(countByName(events)).toEqual({
      CreateBucket: 1,
      PutObject: 1,
      GetObject: 1,
      ListObjectsV2: 1,
      DeleteObject: 1,
      CreateTable: 1,
      PutItem: 1,
      GetItem: 1,
      GetCallerIdentity: 1,
    });
    for (const e of events) {
      expect(e.userIdentity?.principalId).toBe("sdk-agent");
      expect(e.userIdentity?.accessKeyId).toBe(cred.accessKeyId);
      expect(e.tollgate?.decision).toBe(Decision.ALLOW);
      expect(e.tollgate?.connection).toBe("default");
      expect(e.tollgate?.httpStatus).toBeLessThan(300);
      expect(e.errorCode).toBeUndefined();
      expect(e.requestId, `${e.eventName} has a request id`).not.toBe("");
      expect(e.eventType).toBe("AwsApiCall");
    }
    const byName = new Map(events.map((e) => [e.eventName, e]));
    expect(byName.get("PutObject")?.eventSource).toBe("s3.amazonaws.com");
    expect(byName.get("PutObject")?.resources).toEqual([
      expect.objectContaining({ arn: "arn:aws:s3:::e2e-sdk-bucket/dir/hello.txt", type: "AWS::S3::Object" }),
      expect.objectContaining({ arn: "arn:aws:s3:::e2e-sdk-bucket", type: "AWS::S3::Bucket" }),
    ]);
    expect(byName.get("PutObject")?.readOnly).toBe(false);
    expect(byName.get("GetObject")?.readOnly).toBe(true);
    expect(byName.get("PutItem")?.eventSource).toBe("dynamodb.amazonaws.com");
    expect(byName.get("PutItem")?.resources[0]?.arn).toMatch(/^arn:aws:dynamodb:us-east-1:\d{12}:table\/e2e-table$/);
    expect(byName.get("GetCallerIdentity")?.eventSource).toBe("sts.amazonaws.com");

    // The same events through the CLI, as JSON lines with CloudTrail's field names.
    const q = await dev.cli(["audit", "query", "--principal", "sdk-agent", "--since", "15m", "--json"]);
    expect(q.code, q.stderr).toBe(0);
    const lines = q.stdout.trim().split("\n");
    expect(lines).toHaveLength(9);
    const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
    for (const field of [
      "eventID",
      "eventTime",
      "eventSource",
      "eventName",
      "awsRegion",
      "sourceIPAddress",
      "userIdentity",
      "requestID",
      "readOnly",
      "resources",
      "tollgate",
    ]) {
      expect(first, field).toHaveProperty(field);
    }
    expect(new Set(lines.map((l) => (JSON.parse(l) as { eventID: string }).eventID))).toEqual(
      new Set(events.map((e) => e.eventId)),
    );
  });
});

describe("aws CLI through the edge", () => {
  it("s3 cp, s3 ls and dynamodb get-item work and are audited once each", async () => {
    const cred = await issue("cli-agent");
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dev.home,
      AWS_ENDPOINT_URL: dev.edgeUrl,
      AWS_ACCESS_KEY_ID: cred.accessKeyId,
      AWS_SECRET_ACCESS_KEY: cred.secretAccessKey,
      AWS_SESSION_TOKEN: cred.sessionToken,
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_MAX_ATTEMPTS: "1",
      AWS_CONFIG_FILE: "/dev/null",
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    };
    const setup = new S3Client({ ...sdkConfig(cred), forcePathStyle: true });
    await setup.send(new CreateBucketCommand({ Bucket: "e2e-cli-bucket" }));
    const file = join(dev.home, "upload.txt");
    await import("node:fs/promises").then((fs) => fs.writeFile(file, "from the aws cli\n"));

    const cp = await runProcess("aws", ["s3", "cp", file, "s3://e2e-cli-bucket/up/load.txt"], env);
    expect(cp.code, cp.stderr).toBe(0);
    const ls = await runProcess("aws", ["s3", "ls"], env);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain("e2e-cli-bucket");
    const gi = await runProcess(
      "aws",
      ["dynamodb", "get-item", "--table-name", "e2e-table", "--key", '{"pk":{"S":"k1"}}', "--output", "json"],
      env,
    );
    expect(gi.code, gi.stderr).toBe(0);
    expect((JSON.parse(gi.stdout) as { Item: { v: { S: string } } }).Item.v.S).toBe("value-1");

    const head = await setup.send(new HeadObjectCommand({ Bucket: "e2e-cli-bucket", Key: "up/load.txt" }));
    expect(head.ContentLength).toBe(17);

    const events = await waitForEvents(dev, { principal: "cli-agent" }, 5);
    expect(countByName(events)).toEqual({
      CreateBucket: 1,
      PutObject: 1,
      ListBuckets: 1,
      GetItem: 1,
      HeadObject: 1,
    });
    const put = events.find((e) => e.eventName === "PutObject");
    expect(put?.resources.map((r) => r.arn)).toContain("arn:aws:s3:::e2e-cli-bucket/up/load.txt");
    expect(put?.userAgent).toMatch(/aws-cli/);
  });
});

describe("refusals", () => {
  it("a wrong secret gets SignatureDoesNotMatch (403), a refused event, and nothing reaches AWS", async () => {
    const cred = await issue("forger");
    const good = new S3Client({ ...sdkConfig(cred), forcePathStyle: true });
    await good.send(new CreateBucketCommand({ Bucket: "e2e-forged" }));
    const bad = new S3Client({
      ...sdkConfig({ ...cred, secretAccessKey: `${cred.secretAccessKey.slice(0, -2)}xx` }),
      forcePathStyle: true,
    });
    const err = await bad
      .send(new PutObjectCommand({ Bucket: "e2e-forged", Key: "planted.txt", Body: "should never land" }))
      .then(
        () => undefined,
        (e: unknown) => e as { name: string; $metadata: { httpStatusCode: number } },
      );
    expect(err?.name).toBe("SignatureDoesNotMatch");
    expect(err?.$metadata.httpStatusCode).toBe(403);

    // moto never saw it: the object does not exist.
    const head = await good.send(new HeadObjectCommand({ Bucket: "e2e-forged", Key: "planted.txt" })).then(
      () => 200,
      (e: { $metadata: { httpStatusCode: number } }) => e.$metadata.httpStatusCode,
    );
    expect(head).toBe(404);

    const events = await waitForEvents(dev, { principal: "forger", operation: "PutObject" }, 1);
    expect(events).toHaveLength(1);
    const refused = events[0];
    expect(refused?.tollgate?.decision).toBe(Decision.DENY);
    expect(refused?.errorCode).toBe("SignatureDoesNotMatch");
    expect(refused?.tollgate?.httpStatus).toBe(403);
    expect(refused?.requestId).toBe("");
    expect(refused?.userIdentity?.type).toBe("Unauthenticated");
  });

  it("an unknown access key and an expired token get AWS error codes", async () => {
    const sts = new STSClient({
      endpoint: dev.edgeUrl,
      region: "us-east-1",
      credentials: { accessKeyId: "AKIAUNKNOWN", secretAccessKey: "nope" },
      maxAttempts: 1,
    });
    const err = await sts.send(new GetCallerIdentityCommand({})).then(
      () => undefined,
      (e: { name: string; $metadata: { httpStatusCode: number } }) => e,
    );
    expect(err?.name).toBe("InvalidClientTokenId");
    expect(err?.$metadata.httpStatusCode).toBe(403);

    // A credential sealed with the real credential key, but issued two hours ago with a 1 h TTL.
    const cfg = await (await enrolledEdgeClient(dev.home, dev.apiUrl, "e2e-expired")).edge.getEdgeConfig({});
    const key = cfg.credentialKeys[0];
    if (key === undefined) throw new Error("no credential key");
    const expired = issueGatewayCredential({
      principal: "expired-agent",
      connection: "default",
      ttlSec: 3600,
      key: { keyId: key.keyId, key: key.key },
      nowMs: Date.now() - 2 * 3600_000,
    });
    gatewaySecrets.push(expired.secretAccessKey);
    const ddb = new DynamoDBClient(sdkConfig({ ...expired }));
    const expiredErr = await ddb.send(new GetItemCommand({ TableName: "e2e-table", Key: { pk: { S: "k1" } } })).then(
      () => undefined,
      (e: { name: string; $metadata: { httpStatusCode: number } }) => e,
    );
    expect(expiredErr?.name).toBe("ExpiredTokenException");
    expect(expiredErr?.$metadata.httpStatusCode).toBe(400);
    const events = await waitForEvents(dev, { principal: "expired-agent" }, 1);
    expect(events.map((e) => [e.eventName, e.errorCode, e.tollgate?.decision])).toEqual([
      ["GetItem", "ExpiredTokenException", Decision.DENY],
    ]);
  });
});

describe("secrets", () => {
  it("no event, log line or printed line contains an upstream or gateway secret", async () => {
    const edgeClient = await enrolledEdgeClient(dev.home, dev.apiUrl, "e2e-secrets");
    const cfg = await edgeClient.edge.getEdgeConfig({ edgeName: "e2e-secrets" });
    const upstreamSecret = cfg.connections.find((c) => c.name === "default")?.upstreamSecretAccessKey ?? "";
    expect(upstreamSecret.length).toBeGreaterThan(10);

    // Every event in the stream, raw as a SIEM would read it.
    const nc = await connect({ servers: NATS_URL });
    const js = jetstream(nc);
    const consumer = await js.consumers.get(dev.names.stream);
    const raw: string[] = [];
    const other: string[] = [];
    const iter = await consumer.fetch({ max_messages: 10_000, expires: 2000 });
    for await (const m of iter) {
      // Checkpoints share the stream; they are grepped for secrets too.
      if (m.subject.includes(".audit.v1.")) raw.push(m.string());
      else other.push(m.string());
      if (m.info.pending === 0) break;
    }
    await nc.close();
    expect(raw.length).toBeGreaterThanOrEqual(19);
    for (const r of raw) auditEventFromJson(r);

    // The query index holds exactly what the stream holds.
    const all = await queryAll(dev, {});
    expect(new Set(all.map((e) => e.eventId))).toEqual(new Set(raw.map((r) => auditEventFromJson(r).eventId)));
    const haystack = [
      ...raw,
      ...other,
      JSON.stringify(all.map((e) => e.requestParameters)),
      dev.logs(),
      ...dev.stderr,
    ].join("\n");
    expect(haystack).not.toContain(upstreamSecret);
    for (const s of gatewaySecrets) expect(haystack).not.toContain(s);
    // Session tokens and Authorization headers are never recorded either.
    expect(haystack).not.toContain("tg1.");
    expect(haystack).not.toMatch(/AWS4-HMAC-SHA256 Credential/);
    // The dev command printed only the demo credential it was asked for, never the upstream secret.
    expect(dev.stdout.join("\n")).not.toContain(upstreamSecret);
    // `tollgate dev` starts the edge with the glibc malloc tunable (sdk malloc-tunables.ts); an
    // edge started without it logs malloc_tunable_missing.
    expect(dev.logs()).toContain('"event":"edge_enrolled"');
    expect(dev.logs()).not.toContain("malloc_tunable_missing");
  });
});
