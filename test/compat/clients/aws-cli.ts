/** Runs matrix rows with the aws CLI: v1 (botocore, on PATH) and v2 (Debian's, /usr/bin/aws). */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runProcess } from "../../support/dev-instance.js";
import { type CompatCall, type CompatContext, type CompatOutcome, fillPlaceholders } from "../compat-case.js";
import { fetchUrl } from "./fetch-url.js";

/** The CLI binaries: v1 is the pyenv shim on PATH, v2 the Debian package's absolute path. */
export const AWS_CLI_BINARIES = { "aws-cli-v1": "aws", "aws-cli-v2": "/usr/bin/aws" } as const;

/**
 * Environment of a CLI (or boto3) process: the row's credential and the way to the edge, nothing inherited
 * from AWS_* or *_PROXY. Endpoint mode: AWS_ENDPOINT_URL. Proxy mode: HTTPS_PROXY and AWS_CA_BUNDLE only.
 */
export function awsProcessEnv(ctx: CompatContext): NodeJS.ProcessEnv {
  const way =
    ctx.mode === "endpoint"
      ? { AWS_ENDPOINT_URL: ctx.edgeUrl }
      : { HTTPS_PROXY: ctx.proxy.url, AWS_CA_BUNDLE: ctx.proxy.caFile };
  return {
    PATH: process.env.PATH,
    HOME: ctx.vars.workDir,
    ...way,
    AWS_ACCESS_KEY_ID: ctx.credential.accessKeyId,
    AWS_SECRET_ACCESS_KEY: ctx.credential.secretAccessKey,
    AWS_SESSION_TOKEN: ctx.credential.sessionToken,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_MAX_ATTEMPTS: "1",
    AWS_RETRY_MODE: "standard",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_PAGER: "",
  };
}

/** Runs one CLI row; never throws. */
export async function runCliCall(binary: string, call: CompatCall, ctx: CompatContext): Promise<CompatOutcome> {
  if (call.kind !== "cli") return { ok: false, error: `not a CLI call: ${call.kind}` };
  // CLI v1 (botocore 1.43) finds the edge through AWS_ENDPOINT_URL, except for `aws sqs`, whose
  // update_endpoint_url customization forces https://queue.amazonaws.com/ unless --endpoint-url is given.
  // CLI v2 2.9 predates AWS_ENDPOINT_URL (2.13) and always needs the flag. Proxy mode: never a flag.
  const needsFlag = ctx.mode === "endpoint" && (binary === AWS_CLI_BINARIES["aws-cli-v2"] || call.args[0] === "sqs");
  const endpoint = needsFlag ? ["--endpoint-url", ctx.edgeUrl] : [];
  const args = [...fillPlaceholders(call.args, ctx.vars), ...endpoint, "--output", "json"];
  try {
    const env = awsProcessEnv(ctx);
    if (call.s3SigV4Config === true) {
      const config = join(ctx.vars.workDir ?? "", "s3v4.config");
      writeFileSync(config, "[default]\ns3 =\n    signature_version = s3v4\n");
      env.AWS_CONFIG_FILE = config;
    }
    const r = await runProcess(binary, args, env);
    if (r.code !== 0) return { ok: false, error: `exit ${r.code}: ${r.stderr.trim().slice(0, 400)}` };
    if (call.presignFetch === undefined) return { ok: true, output: r.stdout };
    const url = r.stdout.trim();
    const res = await fetchUrl(url, call.presignFetch, ctx);
    if (res.status >= 300) return { ok: false, error: `HTTP ${res.status}: ${res.text.slice(0, 300)}` };
    return { ok: true, output: res.text };
  } catch (error) {
    return { ok: false, error: String(error).slice(0, 400) };
  }
}
