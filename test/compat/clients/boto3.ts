/** Runs matrix rows with boto3, one `python3 boto3_driver.py '<case>'` process per row. */
import { join } from "node:path";
import { runProcess } from "../../support/dev-instance.js";
import { type CompatCall, type CompatContext, type CompatOutcome, fillPlaceholders } from "../compat-case.js";
import { awsProcessEnv } from "./aws-cli.js";

const DRIVER = join(import.meta.dirname, "boto3_driver.py");

/** Runs one boto3 row; never throws. */
export async function runBoto3Call(call: CompatCall, ctx: CompatContext): Promise<CompatOutcome> {
  if (call.kind !== "boto3") return { ok: false, error: `not a boto3 call: ${call.kind}` };
  const { kind: _, ...rest } = call;
  const payload = { ...rest, params: fillPlaceholders(call.params, ctx.vars) };
  try {
    const r = await runProcess("python3", [DRIVER, JSON.stringify(payload)], awsProcessEnv(ctx));
    const last = r.stdout.trim().split("\n").at(-1) ?? "";
    let parsed: { ok: boolean; output?: unknown; error?: string };
    try {
      parsed = JSON.parse(last) as typeof parsed;
    } catch {
      return { ok: false, error: `exit ${r.code}: ${r.stderr.trim().slice(-400)}` };
    }
    return parsed.ok
      ? { ok: true, output: JSON.stringify(parsed.output) }
      : { ok: false, error: parsed.error ?? "unknown error" };
  } catch (error) {
    return { ok: false, error: String(error).slice(0, 400) };
  }
}
