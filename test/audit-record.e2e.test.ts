import { createHash, randomBytes } from "node:crypto";
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForEvents } from "./support/audit.js";
import { type DevInstance, startDev } from "./support/dev-instance.js";

let dev: DevInstance;

beforeAll(async () => {
  dev = await startDev();
});

afterAll(async () => {
  await dev?.stop();
});

/** Issues a gateway credential for `principal` with the dev CLI; SDK client settings for its edge. */
async function sdkConfigFor(instance: DevInstance, principal: string) {
  const r = await instance.cli(["credentials", "issue", "--principal", principal, "--ttl", "1h", "--format", "json"]);
  expect(r.code, r.stderr).toBe(0);
  const cred = JSON.parse(r.stdout) as { accessKeyId: string; secretAccessKey: string; sessionToken: string };
  return {
    endpoint: instance.edgeUrl,
    region: "us-east-1",
    credentials: {
      accessKeyId: cred.accessKeyId,
      secretAccessKey: cred.secretAccessKey,
      sessionToken: cred.sessionToken,
    },
    maxAttempts: 1,
  };
}

describe("the audit record (issue #4)", () => {
  it("carries category, auth method and object body digests for SDK calls", async () => {
    const config = await sdkConfigFor(dev, "record-agent");
    const s3 = new S3Client({ ...config, forcePathStyle: true });
    const ddb = new DynamoDBClient(config);
    const sts = new STSClient(config);
    const bucket = `rec-${randomBytes(4).toString("hex")}`;
    const table = `rec-${randomBytes(4).toString("hex")}`;
    const body = randomBytes(300 * 1024 + 17);
    const sha256 = createHash("sha256").update(body).digest("hex");
    // Over 1 MiB: digested on the edge's worker thread (offthread-digest.ts) instead of inline.
    const big = randomBytes(3 * 1024 * 1024 + 5);
    const bigSha256 = createHash("sha256").update(big).digest("hex");

    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "obj.bin", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "obj.bin" }));
    expect(
      Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
    ).toEqual(body);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "big.bin", Body: big }));
    const gotBig = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
    expect(
      Buffer.from(await (gotBig.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
    ).toEqual(big);
    await ddb.send(
      new CreateTableCommand({
        TableName: table,
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    await ddb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: "1" } } }));
    await sts.send(new GetCallerIdentityCommand({}));

    const events = await waitForEvents(dev, { principal: "record-agent" }, 8);
    const byName = (name: string, key = "obj.bin") => {
      const found = events.filter(
        (e) => e.eventName === name && (!name.endsWith("Object") || e.requestParameters?.key === key),
      );
      expect(found, name).toHaveLength(1);
      return found[0] as (typeof found)[number];
    };

    const put = byName("PutObject");
    expect(put.eventCategory).toBe("Data");
    expect(put.managementEvent).toBe(false);
    expect(put.tollgate?.authMethod).toBe("gateway-credential");
    expect(put.tollgate?.requestPayload?.size).toBe(BigInt(body.length));
    expect(put.tollgate?.requestPayload?.sha256).toBe(sha256);
    expect(put.tollgate?.responsePayload).toBeUndefined();

    const get = byName("GetObject");
    expect(get.eventCategory).toBe("Data");
    expect(get.readOnly).toBe(true);
    expect(get.tollgate?.responsePayload?.size).toBe(BigInt(body.length));
    expect(get.tollgate?.responsePayload?.sha256).toBe(sha256);
    expect(get.responseElements).toBeUndefined();

    const bigPut = byName("PutObject", "big.bin");
    expect(bigPut.tollgate?.requestPayload?.size).toBe(BigInt(big.length));
    expect(bigPut.tollgate?.requestPayload?.sha256).toBe(bigSha256);
    const bigGet = byName("GetObject", "big.bin");
    expect(bigGet.tollgate?.responsePayload?.size).toBe(BigInt(big.length));
    expect(bigGet.tollgate?.responsePayload?.sha256).toBe(bigSha256);

    const createBucket = byName("CreateBucket");
    expect(createBucket.eventCategory).toBe("Management");
    expect(createBucket.managementEvent).toBe(true);

    const putItem = byName("PutItem");
    expect(putItem.eventCategory).toBe("Data");
    expect(putItem.managementEvent).toBe(false);
    expect(putItem.requestParameters).toMatchObject({ TableName: table });
    expect(putItem.tollgate?.requestParametersTruncated).toBe(false);
    expect(putItem.tollgate?.authMethod).toBe("gateway-credential");

    const whoami = byName("GetCallerIdentity");
    expect(whoami.eventCategory).toBe("Management");
    expect(whoami.managementEvent).toBe(true);
    expect(whoami.readOnly).toBe(true);
    expect(whoami.eventType).toBe("AwsApiCall");
    expect(whoami.tollgate?.authMethod).toBe("gateway-credential");
    // Plain HTTP endpoint: no TLS details.
    expect(whoami.tlsDetails).toBeUndefined();
  }, 60_000);
});

describe("with TOLLGATE_EDGE_OBJECT_DIGESTS=off", () => {
  let lean: DevInstance;
  beforeAll(async () => {
    lean = await startDev([], { TOLLGATE_EDGE_OBJECT_DIGESTS: "off" });
  });
  afterAll(async () => {
    await lean?.stop();
  });

  it("records object calls without hashing their bodies, except a signed body's verified hash", async () => {
    const s3 = new S3Client({
      ...(await sdkConfigFor(lean, "lean-agent")),
      forcePathStyle: true,
      // No checksum trailer: over plain HTTP the SDK then signs the body's own SHA-256.
      requestChecksumCalculation: "WHEN_REQUIRED",
    });
    const bucket = `lean-${randomBytes(4).toString("hex")}`;
    const body = randomBytes(2 * 1024 * 1024 + 3);
    const sha256 = createHash("sha256").update(body).digest("hex");
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "o.bin", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "o.bin" }));
    expect(
      Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
    ).toEqual(body);

    const events = await waitForEvents(lean, { principal: "lean-agent" }, 3);
    const put = events.find((e) => e.eventName === "PutObject");
    const get = events.find((e) => e.eventName === "GetObject");
    expect(get?.errorCode ?? "").toBe("");
    expect(get?.tollgate?.responsePayload).toBeUndefined();
    expect(put?.errorCode ?? "").toBe("");
    expect(put?.tollgate?.requestPayload).toMatchObject({ size: BigInt(body.length), sha256 });
  }, 60_000);
});
