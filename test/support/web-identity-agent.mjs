// An agent that knows nothing of Tollgate: AWS SDK v3 clients with no configuration at all, so
// credentials come from the default chain (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) and the
// endpoint from AWS_ENDPOINT_URL. Prints one JSON line with what it saw.
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";

const bucket = process.argv[2] ?? "web-identity-agent";
const s3 = new S3Client({ forcePathStyle: true, maxAttempts: 1 });
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
const listed = await s3.send(new ListBucketsCommand({}));
const ddb = new DynamoDBClient({ maxAttempts: 1 });
const tables = await ddb.send(new ListTablesCommand({}));
const creds = await s3.config.credentials();
process.stdout.write(
  `${JSON.stringify({
    buckets: (listed.Buckets ?? []).map((b) => b.Name),
    tables: tables.TableNames ?? [],
    accessKeyId: creds.accessKeyId,
    expiration: creds.expiration?.toISOString(),
  })}\n`,
);
