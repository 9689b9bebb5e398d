import { afterEach, describe, expect, it } from "vitest";
import { signedAwsQuery } from "./aws-query.js";
import { type MotoServer, startMotoServer } from "./moto-server.js";

const callerIdentity = { Action: "GetCallerIdentity", Version: "2011-06-15" };

async function answers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

describe("startMotoServer", () => {
  let moto: MotoServer | undefined;
  afterEach(async () => {
    await moto?.close();
    moto = undefined;
  });

  it("bootstraps an identity that a verifying moto enforces", async () => {
    moto = await startMotoServer({ verifySignatures: true });
    expect(moto.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(moto.accountId).toMatch(/^\d{12}$/);
    expect(moto.accessKeyId).not.toBe("test");

    const ok = await signedAwsQuery({
      endpoint: moto.endpoint,
      service: "sts",
      region: "us-east-1",
      accessKeyId: moto.accessKeyId,
      secretAccessKey: moto.secretAccessKey,
      params: callerIdentity,
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain(`<Arn>arn:aws:iam::${moto.accountId}:user/tollgate-demo</Arn>`);

    const wrongSecret = await signedAwsQuery({
      endpoint: moto.endpoint,
      service: "sts",
      region: "us-east-1",
      accessKeyId: moto.accessKeyId,
      secretAccessKey: `${moto.secretAccessKey}x`,
      params: callerIdentity,
    });
    expect(wrongSecret.status).toBe(403);
    expect(wrongSecret.body).toContain("SignatureDoesNotMatch");
  });

  it("starts a non-verifying moto with dummy keys", async () => {
    moto = await startMotoServer({ verifySignatures: false });
    expect(moto).toMatchObject({ accessKeyId: "test", secretAccessKey: "test", accountId: "123456789012" });
    const response = await signedAwsQuery({
      endpoint: moto.endpoint,
      service: "sts",
      region: "us-east-1",
      accessKeyId: "anything",
      secretAccessKey: "wrong",
      params: callerIdentity,
    });
    expect(response.status).toBe(200);
  });

  it("close() stops moto", async () => {
    const started = await startMotoServer({ verifySignatures: false });
    expect(await answers(started.endpoint)).toBe(true);
    await started.close();
    await started.close();
    expect(await answers(started.endpoint)).toBe(false);
  });

  it("fails clearly when the executable is missing", async () => {
    await expect(startMotoServer({ verifySignatures: false, command: "no-such-moto-server" })).rejects.toThrow(
      /no-such-moto-server not found on PATH/,
    );
  });
});
