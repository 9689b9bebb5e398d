import { describe, expect, it } from "vitest";
import { REDACTED, redactSensitive } from "./sensitive-redaction.js";

describe("redactSensitive", () => {
  it("uses CloudTrail's marker", () => {
    expect(REDACTED).toBe("HIDDEN_DUE_TO_SECURITY_REASONS");
  });

  it("redacts Secrets Manager secret values in requests and responses", () => {
    expect(
      redactSensitive(
        "secretsmanager",
        "PutSecretValue",
        { SecretId: "s", SecretString: "pw", SecretBinary: "AA==" },
        "request",
      ),
    ).toEqual({ SecretId: "s", SecretString: REDACTED, SecretBinary: REDACTED });
    expect(
      redactSensitive(
        "secretsmanager",
        "BatchGetSecretValue",
        {
          SecretValues: [
            { Name: "a", SecretString: "x" },
            { Name: "b", SecretBinary: "y" },
          ],
        },
        "response",
      ),
    ).toEqual({
      SecretValues: [
        { Name: "a", SecretString: REDACTED },
        { Name: "b", SecretBinary: REDACTED },
      ],
    });
  });

  it("redacts credentials from STS and IAM responses, keeping the access key id", () => {
    const sts = {
      Credentials: { AccessKeyId: "ASIA1", SecretAccessKey: "sk", SessionToken: "tok", Expiration: "2030" },
      AssumedRoleUser: { Arn: "arn" },
    };
    expect(redactSensitive("sts", "AssumeRole", sts, "response")).toEqual({
      Credentials: { AccessKeyId: "ASIA1", SecretAccessKey: REDACTED, SessionToken: REDACTED, Expiration: "2030" },
      AssumedRoleUser: { Arn: "arn" },
    });
    expect(
      redactSensitive(
        "iam",
        "CreateAccessKey",
        { AccessKey: { AccessKeyId: "AKIA1", SecretAccessKey: "sk" } },
        "response",
      ),
    ).toEqual({ AccessKey: { AccessKeyId: "AKIA1", SecretAccessKey: REDACTED } });
  });

  it("matches member names case-insensitively but exactly", () => {
    expect(
      redactSensitive(
        "x",
        "Op",
        {
          password: "a",
          NEWPASSWORD: "b",
          OldPassword: "c",
          privateKey: "d",
          keyMaterial: "e",
          PasswordPolicy: { MinimumPasswordLength: 8 },
          PasswordData: "encrypted",
          PasswordLastUsed: "2024",
        },
        "response",
      ),
    ).toEqual({
      password: REDACTED,
      NEWPASSWORD: REDACTED,
      OldPassword: REDACTED,
      privateKey: REDACTED,
      keyMaterial: REDACTED,
      PasswordPolicy: { MinimumPasswordLength: 8 },
      PasswordData: "encrypted",
      PasswordLastUsed: "2024",
    });
  });

  it("redacts KMS plaintext but not ciphertext", () => {
    expect(
      redactSensitive("kms", "GenerateDataKey", { KeyId: "k", Plaintext: "p", CiphertextBlob: "c" }, "response"),
    ).toEqual({ KeyId: "k", Plaintext: REDACTED, CiphertextBlob: "c" });
  });

  it("matches flattened query keys on their member name", () => {
    expect(
      redactSensitive("x", "Op", { "Attributes.member.1.Password": "p", "Tags.member.1.Value": "v" }, "request"),
    ).toEqual({ "Attributes.member.1.Password": REDACTED, "Tags.member.1.Value": "v" });
  });

  it("SSM: PutParameter request Value, GetParameter(s) response values", () => {
    expect(redactSensitive("ssm", "PutParameter", { Name: "n", Value: "v", Type: "SecureString" }, "request")).toEqual({
      Name: "n",
      Value: REDACTED,
      Type: "SecureString",
    });
    expect(redactSensitive("ssm", "GetParameter", { Parameter: { Name: "n", Value: "v" } }, "response")).toEqual({
      Parameter: { Name: "n", Value: REDACTED },
    });
    for (const operation of ["GetParameters", "GetParametersByPath", "GetParameterHistory"]) {
      expect(
        redactSensitive(
          "ssm",
          operation,
          {
            Parameters: [
              { Name: "a", Value: "1" },
              { Name: "b", Value: "2" },
            ],
          },
          "response",
        ),
      ).toEqual({
        Parameters: [
          { Name: "a", Value: REDACTED },
          { Name: "b", Value: REDACTED },
        ],
      });
    }
    // "Value" elsewhere (tags, other services, other operations) is not secret.
    expect(redactSensitive("ssm", "AddTagsToResource", { Tags: [{ Key: "k", Value: "v" }] }, "request")).toEqual({
      Tags: [{ Key: "k", Value: "v" }],
    });
    expect(redactSensitive("ec2", "PutParameter", { Value: "v" }, "request")).toEqual({ Value: "v" });
  });

  it("Lambda: environment variable values, wherever the Environment sits", () => {
    expect(
      redactSensitive(
        "lambda",
        "GetFunction",
        { Configuration: { FunctionName: "f", Environment: { Variables: { DB_PASSWORD: "x", MODE: "prod" } } } },
        "response",
      ),
    ).toEqual({
      Configuration: { FunctionName: "f", Environment: { Variables: { DB_PASSWORD: REDACTED, MODE: REDACTED } } },
    });
  });

  it("leaves DynamoDB item values alone", () => {
    const item = { TableName: "t", Item: { id: { S: "1" }, body: { M: { text: { S: "hello" } } } } };
    expect(redactSensitive("dynamodb", "PutItem", item, "request")).toEqual(item);
  });

  it("returns a deep copy and leaves the input untouched", () => {
    const input = { a: { SecretString: "s", list: [1, { b: 2 }] } };
    const output = redactSensitive("secretsmanager", "X", input, "response") as typeof input;
    expect(input.a.SecretString).toBe("s");
    expect(output.a.list).not.toBe(input.a.list);
    expect(output.a.list).toEqual([1, { b: 2 }]);
  });

  it("passes primitives and null through", () => {
    expect(redactSensitive("s3", "X", null, "request")).toBeNull();
    expect(redactSensitive("s3", "X", "text", "request")).toBe("text");
    expect(redactSensitive("s3", "X", 3, "request")).toBe(3);
  });

  it("keeps a __proto__ member as data", () => {
    const input: unknown = JSON.parse('{"__proto__":{"polluted":true},"Password":"x"}');
    const output = redactSensitive("x", "Op", input, "request") as Record<string, unknown>;
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype);
    expect(Object.hasOwn(output, "__proto__")).toBe(true);
    expect(output.Password).toBe(REDACTED);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("withholds subtrees nested deeper than it inspects", () => {
    let deep: unknown = { Password: "x" };
    for (let i = 0; i < 1000; i++) deep = { next: deep };
    const text = JSON.stringify(redactSensitive("x", "Op", deep, "request"));
    expect(text).not.toContain('"x"');
    expect(text).toContain(REDACTED);
  });
});
