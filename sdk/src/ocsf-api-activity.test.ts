import { create } from "@bufbuild/protobuf";
import { AuditEventSchema, Decision } from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import { ocsfActivity, renderOcsfApiActivity } from "./ocsf-api-activity.js";

const base = create(AuditEventSchema, {
  eventVersion: "1.0",
  eventId: "6f1c9a52-0f7e-4a57-9a5c-0d4c2a0e7b11",
  eventTime: "2026-11-27T08:00:00.123Z",
  eventSource: "s3.amazonaws.com",
  eventName: "PutObject",
  awsRegion: "eu-west-1",
  sourceIpAddress: "10.0.0.7",
  userAgent: "aws-cli/2.15",
  userIdentity: { type: "TollgatePrincipal", principalId: "ci-bot", accessKeyId: "TGIAEXAMPLE" },
  requestParameters: { bucketName: "b", key: "k" },
  requestId: "REQ123",
  readOnly: false,
  resources: [{ arn: "arn:aws:s3:::b/k", type: "AWS::S3::Object" }],
  eventType: "AwsApiCall",
  recipientAccountId: "123456789012",
  tollgate: {
    connection: "prod",
    edge: "edge-1",
    decision: Decision.ALLOW,
    httpStatus: 200,
    bytesIn: 5n,
    signingName: "s3",
  },
});

describe("renderOcsfApiActivity", () => {
  it("maps a successful write to API Activity: Create with CloudTrail's fields in OCSF places", () => {
    const o = renderOcsfApiActivity(base);
    expect(o).toMatchObject({
      class_uid: 6003,
      category_uid: 6,
      activity_id: 1,
      type_uid: 600301,
      status_id: 1,
      status: "Success",
      time: Date.parse("2026-11-27T08:00:00.123Z"),
      metadata: { uid: base.eventId, version: "1.1.0", event_code: "AwsApiCall" },
      api: { operation: "PutObject", service: { name: "s3.amazonaws.com" }, request: { uid: "REQ123" } },
      actor: { user: { uid: "ci-bot", credential_uid: "TGIAEXAMPLE" } },
      src_endpoint: { ip: "10.0.0.7" },
      http_request: { user_agent: "aws-cli/2.15" },
      cloud: { provider: "AWS", region: "eu-west-1", account: { uid: "123456789012" } },
      resources: [{ uid: "arn:aws:s3:::b/k", type: "AWS::S3::Object" }],
    });
    expect(o.unmapped.tollgate).toMatchObject({ connection: "prod", decision: "ALLOW", bytesIn: 5 });
    expect(JSON.parse(JSON.stringify(o))).toEqual(o);
  });

  it("marks refused and failed calls as Failure with the error code", () => {
    const refused = create(AuditEventSchema, {
      ...base,
      errorCode: "SignatureDoesNotMatch",
      errorMessage: "bad",
      tollgate: { ...base.tollgate, decision: Decision.DENY },
    });
    const o = renderOcsfApiActivity(refused);
    expect(o.status_id).toBe(2);
    expect(o.status_code).toBe("SignatureDoesNotMatch");
    expect(o.api.response).toEqual({ error: "SignatureDoesNotMatch", message: "bad" });
  });

  it("derives the activity from the operation verb", () => {
    expect(ocsfActivity("GetObject", true)).toEqual({ id: 2, name: "Read" });
    expect(ocsfActivity("DeleteBucket", false)).toEqual({ id: 4, name: "Delete" });
    expect(ocsfActivity("UpdateItem", false)).toEqual({ id: 3, name: "Update" });
    expect(ocsfActivity("AssumeRole", false)).toEqual({ id: 99, name: "Other" });
    expect(ocsfActivity("DryRunSomething", true)).toEqual({ id: 2, name: "Read" });
  });
});
