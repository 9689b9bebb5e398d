/** Runs matrix rows with the AWS SDK for JavaScript v3. */
import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { Readable } from "node:stream";
import * as CloudWatch from "@aws-sdk/client-cloudwatch";
import * as DynamoDB from "@aws-sdk/client-dynamodb";
import * as EC2 from "@aws-sdk/client-ec2";
import * as IAM from "@aws-sdk/client-iam";
import * as KMS from "@aws-sdk/client-kms";
import * as Lambda from "@aws-sdk/client-lambda";
import * as S3 from "@aws-sdk/client-s3";
import * as SecretsManager from "@aws-sdk/client-secrets-manager";
import * as SNS from "@aws-sdk/client-sns";
import * as SQS from "@aws-sdk/client-sqs";
import * as SSM from "@aws-sdk/client-ssm";
import * as STS from "@aws-sdk/client-sts";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { ConnectTunnelAgent } from "../../support/connect-tunnel-agent.js";
import {
  type CompatCall,
  type CompatContext,
  type CompatOutcome,
  type CompatValue,
  describeError,
  fillPlaceholders,
} from "../compat-case.js";
import { fetchUrl, proxyAgent } from "./fetch-url.js";

type SdkModule = Record<string, unknown>;
interface SdkClient {
  send(command: unknown): Promise<Record<string, unknown>>;
  destroy(): void;
}
type SdkClientCtor = new (config: Record<string, unknown>) => SdkClient;
type SdkCommandCtor = new (input: unknown) => unknown;

const MODULES: Record<string, SdkModule> = {
  CloudWatch,
  DynamoDB,
  EC2,
  IAM,
  KMS,
  Lambda,
  S3,
  SecretsManager,
  SNS,
  SQS,
  SSM,
  STS,
};

/** An agent that resolves every host name (e.g. `<bucket>.localhost`) to the loopback address. */
const loopbackAgent = new Agent({
  keepAlive: false,
  lookup: (_host, options, callback) => {
    if ((options as { all?: boolean }).all === true) {
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: "127.0.0.1", family: 4 },
      ]);
    } else {
      callback(null, "127.0.0.1", 4);
    }
  },
});

/**
 * Endpoint mode: `endpoint` = the edge. Proxy mode: no endpoint (AWS's host names), and since SDK v3 ignores
 * HTTPS_PROXY, a CONNECT agent through the edge's proxy trusting the Tollgate CA.
 */
function clientConfig(ctx: CompatContext, agent: ConnectTunnelAgent | undefined, region = "us-east-1") {
  const config: Record<string, unknown> = { region, credentials: ctx.credential, maxAttempts: 1 };
  if (agent === undefined) config.endpoint = ctx.edgeUrl;
  else config.requestHandler = new NodeHttpHandler({ httpsAgent: agent });
  return config;
}

/** `{ $file: path }` becomes the file's bytes. */
function materialize(value: CompatValue): unknown {
  if (Array.isArray(value)) return value.map(materialize);
  if (value !== null && typeof value === "object") {
    const file = value.$file;
    if (typeof file === "string" && Object.keys(value).length === 1) return new Uint8Array(readFileSync(file));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, materialize(v)]));
  }
  return value;
}

async function renderOutput(result: Record<string, unknown>): Promise<string> {
  const { $metadata: _, ...rest } = result;
  const body = rest.Body as { transformToString?: () => Promise<string> } | undefined;
  if (body?.transformToString !== undefined) rest.Body = await body.transformToString();
  return JSON.stringify(rest, (_k, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v,
  );
}

/** Runs one SDK row; never throws. */
export async function runSdkCall(call: CompatCall, ctx: CompatContext): Promise<CompatOutcome> {
  let client: SdkClient | undefined;
  const agent = ctx.mode === "proxy" ? proxyAgent(ctx.proxy) : undefined;
  try {
    switch (call.kind) {
      case "sdk": {
        const mod = MODULES[call.client];
        const Ctor = mod?.[`${call.client}Client`] as SdkClientCtor | undefined;
        const Command = mod?.[`${call.command}Command`] as SdkCommandCtor | undefined;
        if (Ctor === undefined || Command === undefined) {
          return { ok: false, error: `no SDK command ${call.client}.${call.command}` };
        }
        const config = clientConfig(ctx, agent, call.region);
        if (call.client === "S3") {
          if (call.addressing !== "virtual") {
            config.forcePathStyle = true;
          } else if (agent === undefined) {
            const port = new URL(ctx.edgeUrl).port;
            config.endpoint = `http://localhost:${port}`;
            config.requestHandler = { httpAgent: loopbackAgent };
          }
          // else proxy mode: virtual-hosted is the SDK's default (`<bucket>.s3.us-east-1.amazonaws.com`).
        }
        client = new Ctor(config);
        const input = materialize(fillPlaceholders(call.input, ctx.vars)) as Record<string, unknown>;
        if (call.bodyAsStream === true && typeof input.Body === "string") {
          const bytes = Buffer.from(input.Body);
          input.Body = Readable.from([bytes]);
          input.ContentLength = bytes.length;
        }
        return { ok: true, output: await renderOutput(await client.send(new Command(input))) };
      }
      case "sdk-upload": {
        const s3 = new S3.S3Client({ ...clientConfig(ctx, agent), forcePathStyle: true });
        client = s3 as unknown as SdkClient;
        const upload = new Upload({
          client: s3,
          params: {
            Bucket: fillPlaceholders(call.bucket, ctx.vars),
            Key: fillPlaceholders(call.key, ctx.vars),
            Body: Buffer.alloc(call.size, 7),
          },
        });
        return { ok: true, output: await renderOutput((await upload.done()) as unknown as Record<string, unknown>) };
      }
      case "sdk-presign": {
        // Path style at the edge's IP endpoint; the SDK's default (virtual-hosted) through the proxy.
        const s3 = new S3.S3Client({ ...clientConfig(ctx, agent), forcePathStyle: agent === undefined });
        client = s3 as unknown as SdkClient;
        const Bucket = fillPlaceholders(call.bucket, ctx.vars);
        const Key = fillPlaceholders(call.key, ctx.vars);
        const command =
          call.method === "GET" ? new S3.GetObjectCommand({ Bucket, Key }) : new S3.PutObjectCommand({ Bucket, Key });
        const url = await getSignedUrl(s3, command, { expiresIn: 600 });
        const res = await fetchUrl(
          url,
          { method: call.method, ...(call.body === undefined ? {} : { body: call.body }) },
          ctx,
        );
        if (res.status >= 300) return { ok: false, error: `HTTP ${res.status}: ${res.text.slice(0, 300)}` };
        return { ok: true, output: res.text };
      }
      default:
        return { ok: false, error: `not an SDK call: ${call.kind}` };
    }
  } catch (error) {
    return { ok: false, error: describeError(error) };
  } finally {
    client?.destroy();
    agent?.destroy();
  }
}
