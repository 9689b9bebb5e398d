import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import {
  mayBeWebIdentityCall,
  parseWebIdentityCall,
  renderWebIdentityError,
  renderWebIdentityResult,
  webIdentityClassification,
  webIdentityResponseElements,
} from "./web-identity-sts.js";

function req(method: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

const form = "application/x-www-form-urlencoded; charset=utf-8";

describe("web identity STS call", () => {
  it("is recognised only when unsigned, at /, as a form POST or a GET naming the action", () => {
    expect(mayBeWebIdentityCall(req("POST", { "content-type": form }), "/", "")).toBe(true);
    expect(mayBeWebIdentityCall(req("GET"), "/", "Action=AssumeRoleWithWebIdentity&RoleArn=x")).toBe(true);
    expect(mayBeWebIdentityCall(req("GET"), "/", "Action=GetCallerIdentity")).toBe(false);
    expect(
      mayBeWebIdentityCall(req("POST", { "content-type": form, authorization: "AWS4-HMAC-SHA256 x" }), "/", ""),
    ).toBe(false);
    expect(mayBeWebIdentityCall(req("POST", { "content-type": form }), "/bucket", "")).toBe(false);
    expect(mayBeWebIdentityCall(req("POST", { "content-type": "multipart/form-data" }), "/", "")).toBe(false);
    expect(
      mayBeWebIdentityCall(req("GET"), "/", "Action=AssumeRoleWithWebIdentity&X-Amz-Credential=a&X-Amz-Signature=b"),
    ).toBe(false);
  });

  it("parses only AssumeRoleWithWebIdentity; the token never reaches requestParameters", () => {
    const body = Buffer.from(
      "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Ftollgate%2Fdefault&RoleSessionName=s1&WebIdentityToken=eyJ.secret.sig&DurationSeconds=900",
    );
    const p = parseWebIdentityCall("", body);
    expect(p).toEqual({
      roleArn: "arn:aws:iam::000000000000:role/tollgate/default",
      roleSessionName: "s1",
      webIdentityToken: "eyJ.secret.sig",
      durationSec: 900,
      version: "2011-06-15",
    });
    expect(parseWebIdentityCall("", Buffer.from("Action=AssumeRoleWithSAML&SAMLAssertion=x"))).toBeUndefined();
    expect(parseWebIdentityCall("Action=AssumeRoleWithWebIdentity&DurationSeconds=1e3", undefined)?.durationSec).toBe(
      -1,
    );
    const c = webIdentityClassification(p as NonNullable<typeof p>, "eu-west-1");
    expect(c).toMatchObject({ service: "sts", eventName: "AssumeRoleWithWebIdentity", awsRegion: "eu-west-1" });
    expect(JSON.stringify(c)).not.toContain("eyJ.secret.sig");
  });

  it("answers in STS's XML, and records no secret", () => {
    const outcome = {
      errorCode: "",
      errorMessage: "",
      subject: "sub<&>",
      principal: "p",
      connection: "default",
      provider: "https://idp",
      audience: "aud",
      groups: [],
      accountId: "",
      credential: {
        accessKeyId: "TGIAXXXX",
        secretAccessKey: "s3cr3t",
        sessionToken: "tg1.token",
        expiration: new Date("2030-01-01T00:00:00Z"),
        credentialId: "c1",
      },
    };
    const user = { arn: "arn:aws:sts::000000000000:assumed-role/default/s1", assumedRoleId: "TGRO1:s1" };
    const r = renderWebIdentityResult(outcome, user, "req-1");
    expect(r.status).toBe(200);
    expect(r.body).toContain("<SecretAccessKey>s3cr3t</SecretAccessKey>");
    expect(r.body).toContain("<SubjectFromWebIdentityToken>sub&lt;&amp;&gt;</SubjectFromWebIdentityToken>");
    expect(r.body).toContain("<Expiration>2030-01-01T00:00:00.000Z</Expiration>");
    expect(r.body).toContain("<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>");
    const elements = JSON.stringify(webIdentityResponseElements(outcome, user));
    expect(elements).not.toContain("s3cr3t");
    expect(elements).not.toContain("tg1.token");
    const e = renderWebIdentityError("IDPRejectedClaim", "no", "req-2");
    expect(e.status).toBe(403);
    expect(e.body).toContain("<Code>IDPRejectedClaim</Code>");
    expect(e.body).toContain('xmlns="https://sts.amazonaws.com/doc/2011-06-15/"');
  });
});
