/** CloudTrail's event category: control-plane ("Management") or data-plane ("Data") activity. */
export type EventCategory = "Management" | "Data";

/**
 * Operations CloudTrail records as data events, by SigV4 signing name (Tollgate's `service`).
 * Everything else is a management event, as in CloudTrail, including Secrets Manager
 * `GetSecretValue`, KMS `Encrypt`/`Decrypt`/`GenerateDataKey`, STS and IAM.
 *
 * - S3 (`AWS::S3::Object`): object-level operations, plus the object listings CloudTrail logs
 *   as data events; bucket configuration calls (CreateBucket, PutBucketPolicy, ...) are management.
 * - DynamoDB (`AWS::DynamoDB::Table`, `AWS::DynamoDB::Stream`): item-level and PartiQL calls,
 *   and stream reads.
 * - Lambda (`AWS::Lambda::Function`): invocations.
 * - SNS (`AWS::SNS::Topic`): publishing.
 * - SQS (`AWS::SQS::Queue`): message operations.
 */
export const DATA_EVENT_OPERATIONS: Readonly<Record<string, ReadonlySet<string>>> = {
  s3: new Set([
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateMultipartUpload",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjects",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "HeadObject",
    "ListMultipartUploads",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListParts",
    "PostObject",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "RestoreObject",
    "SelectObjectContent",
    "UploadPart",
    "UploadPartCopy",
    "WriteGetObjectResponse",
  ]),
  dynamodb: new Set([
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "DeleteItem",
    "ExecuteStatement",
    "ExecuteTransaction",
    "GetItem",
    "PutItem",
    "Query",
    "Scan",
    "TransactGetItems",
    "TransactWriteItems",
    "UpdateItem",
    // DynamoDB Streams (signed as "dynamodb").
    "DescribeStream",
    "GetRecords",
    "GetShardIterator",
  ]),
  lambda: new Set(["Invoke", "InvokeAsync", "InvokeWithResponseStream"]),
  sns: new Set(["Publish", "PublishBatch"]),
  sqs: new Set([
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ReceiveMessage",
    "SendMessage",
    "SendMessageBatch",
  ]),
};

/** CloudTrail's `eventCategory` for an operation of a service (signing name). */
export function eventCategoryOf(service: string, operation: string): EventCategory {
  return DATA_EVENT_OPERATIONS[service]?.has(operation) === true ? "Data" : "Management";
}
