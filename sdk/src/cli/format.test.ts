import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema, ConnectionSchema, Decision, IssueCredentialResponseSchema } from "@tollgate/proto";
import { describe, expect, it } from "vitest";
import {
  formatConnectionDetails,
  formatConnectionJson,
  formatConnectionTable,
  formatCredential,
  formatDevReady,
  formatEventLine,
  formatEventTable,
  type IssuedCredential,
  shellQuote,
  toIssuedCredential,
} from "./format.js";

const credential: IssuedCredential = {
  accessKeyId: "TGIAABCDEFGHIJKLMNOP",
  secretAccessKey: "s3cr3t-_Secret",
  sessionToken: "tg1.abc123.AAAA-bbbb_cccc",
  expiration: new Date("2026-11-27T08:00:00.000Z"),
  principal: "ci-bot",
  connection: "default",
  credentialId: "cred-0123",
};

describe("formatCredential", () => {
  it("env: export lines and the expiry", () => {
    expect(formatCredential(credential, "env")).toBe(
      [
        "export AWS_ACCESS_KEY_ID=TGIAABCDEFGHIJKLMNOP",
        "export AWS_SECRET_ACCESS_KEY=s3cr3t-_Secret",
        "export AWS_SESSION_TOKEN=tg1.abc123.AAAA-bbbb_cccc",
        "# expires 2026-11-27T08:00:00.000Z",
        "",
      ].join("\n"),
    );
  });

  it("json: one object", () => {
    const text = formatCredential(credential, "json");
    expect(text.endsWith("}\n")).toBe(true);
    expect(text.trim().includes("\n")).toBe(false);
    expect(JSON.parse(text)).toEqual({
      accessKeyId: "TGIAABCDEFGHIJKLMNOP",
      secretAccessKey: "s3cr3t-_Secret",
      sessionToken: "tg1.abc123.AAAA-bbbb_cccc",
      expiration: "2026-11-27T08:00:00.000Z",
      principal: "ci-bot",
      connection: "default",
      credentialId: "cred-0123",
    });
  });

  it("credential-process: the AWS CLI's format", () => {
    expect(JSON.parse(formatCredential(credential, "credential-process"))).toEqual({
      Version: 1,
      AccessKeyId: "TGIAABCDEFGHIJKLMNOP",
      SecretAccessKey: "s3cr3t-_Secret",
      SessionToken: "tg1.abc123.AAAA-bbbb_cccc",
      Expiration: "2026-11-27T08:00:00.000Z",
    });
  });

  it("converts the CredentialService response", () => {
    const response = create(IssueCredentialResponseSchema, {
      accessKeyId: "AK",
      secretAccessKey: "SK",
      sessionToken: "ST",
      expireTime: timestampFromMs(Date.parse("2026-11-27T08:00:00Z")),
      credentialId: "cred-1",
      principal: "p",
      connection: "c",
    });
    expect(toIssuedCredential(response)).toEqual({
      accessKeyId: "AK",
      secretAccessKey: "SK",
      sessionToken: "ST",
      expiration: new Date("2026-11-27T08:00:00Z"),
      credentialId: "cred-1",
      principal: "p",
      connection: "c",
    });
  });
});

describe("shellQuote", () => {
  it("leaves plain values bare and quotes the rest", () => {
    expect(shellQuote("http://127.0.0.1:8787")).toBe("http://127.0.0.1:8787");
    expect(shellQuote("a+b/c=")).toBe("a+b/c=");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(shellQuote("")).toBe("''");
  });
});

describe("formatDevReady", () => {
  it("prints the ready line, the exports and a command to try, in order", () => {
    expect(
      formatDevReady({
        edgeUrl: "http://127.0.0.1:8787",
        apiUrl: "http://127.0.0.1:8788",
        region: "us-east-1",
        credential,
      })
        .trimEnd()
        .split("\n"),
    ).toEqual([
      "tollgate: ready edge=http://127.0.0.1:8787 api=http://127.0.0.1:8788",
      "export AWS_ENDPOINT_URL=http://127.0.0.1:8787",
      "export AWS_ACCESS_KEY_ID=TGIAABCDEFGHIJKLMNOP",
      "export AWS_SECRET_ACCESS_KEY=s3cr3t-_Secret",
      "export AWS_SESSION_TOKEN=tg1.abc123.AAAA-bbbb_cccc",
      "export AWS_REGION=us-east-1",
      "export AWS_DEFAULT_REGION=us-east-1",
      "# try:",
      "aws s3 mb s3://demo-bucket && aws s3 ls",
    ]);
  });
});

const allowed = create(AuditEventSchema, {
  eventTime: "2026-11-27T07:00:00.123Z",
  eventSource: "s3.amazonaws.com",
  eventName: "PutObject",
  userIdentity: { type: "TollgatePrincipal", principalId: "demo-agent", accessKeyId: "TGIA" },
  resources: [{ arn: "arn:aws:s3:::demo-bucket/x", type: "AWS::S3::Object" }],
  tollgate: { decision: Decision.ALLOW, httpStatus: 200, durationMs: 12.4, signingName: "s3", connection: "default" },
});

const denied = create(AuditEventSchema, {
  eventTime: "2026-11-27T07:00:01.000Z",
  eventSource: "dynamodb.amazonaws.com",
  eventName: "DeleteTable",
  errorCode: "AccessDenied",
  userIdentity: { principalId: "ci-bot" },
  tollgate: { decision: Decision.DENY, httpStatus: 403, durationMs: 0.6 },
});

describe("formatEventLine", () => {
  it("prints one line per event", () => {
    expect(formatEventLine(allowed)).toBe(
      "2026-11-27T07:00:00.123Z demo-agent s3 PutObject allow 200 12ms arn:aws:s3:::demo-bucket/x",
    );
  });
  it("adds the error code and falls back to the event source for the service", () => {
    expect(formatEventLine(denied)).toBe(
      "2026-11-27T07:00:01.000Z ci-bot dynamodb DeleteTable deny 403 1ms AccessDenied",
    );
  });
  it("copes with an empty event", () => {
    expect(formatEventLine(create(AuditEventSchema))).toBe("- - - - - - 0ms");
  });
});

describe("formatEventTable", () => {
  it("aligns columns", () => {
    expect(formatEventTable([allowed, denied]).split("\n")).toEqual([
      "TIME                      PRINCIPAL   SERVICE   OPERATION    DECISION  STATUS  ERROR         RESOURCES",
      "2026-11-27T07:00:00.123Z  demo-agent  s3        PutObject    allow     200     -             arn:aws:s3:::demo-bucket/x",
      "2026-11-27T07:00:01.000Z  ci-bot      dynamodb  DeleteTable  deny      403     AccessDenied  -",
      "",
    ]);
  });
});

describe("connections", () => {
  const connection = create(ConnectionSchema, {
    name: "default",
    region: "us-east-1",
    upstreamEndpoint: "http://127.0.0.1:5000",
    upstreamAccessKeyId: "AKIAEXAMPLE",
    hasUpstreamSecret: true,
    accountId: "123456789012",
  });

  it("table", () => {
    expect(formatConnectionTable([connection])).toBe(
      [
        "NAME     REGION     ACCOUNT       UPSTREAM               ACCESS KEY ID  SECRET",
        "default  us-east-1  123456789012  http://127.0.0.1:5000  AKIAEXAMPLE    stored",
        "",
      ].join("\n"),
    );
  });

  it("json", () => {
    expect(JSON.parse(formatConnectionJson(connection))).toEqual({
      name: "default",
      region: "us-east-1",
      upstreamEndpoint: "http://127.0.0.1:5000",
      upstreamAccessKeyId: "AKIAEXAMPLE",
      hasUpstreamSecret: true,
      accountId: "123456789012",
      credentialSource: "UPSTREAM_CREDENTIAL_SOURCE_UNSPECIFIED",
      roleArn: "",
      externalId: "",
    });
  });

  it("details", () => {
    expect(formatConnectionDetails(connection)).toContain("upstream secret:         stored\n");
  });
});
