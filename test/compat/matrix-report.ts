/** Renders the compatibility matrix results as Markdown (test/compat/MATRIX.md) and a console summary. */
import { COMPAT_CLIENTS, COMPAT_MODES, type CompatCall, type CompatCase, type CompatMode } from "./compat-case.js";

/** A row's result: pass, fail (with problems), or pending (with its reason, and the outcome if it was tried). */
export interface CompatRowResult {
  row: CompatCase;
  status: "pass" | "fail" | "pending";
  /** Failures for "fail"; for "pending", what the try showed (empty if not tried or it passed). */
  problems: string[];
  /** For pending rows run with COMPAT_INCLUDE_PENDING=1: whether they would pass now. */
  triedPasses?: boolean;
  ms: number;
  /** Host headers the row's events were received with over TLS (proxy mode), sorted. */
  hosts: string[];
}

/** How the row calls its client, in one line. */
export function describeCall(call: CompatCall): string {
  switch (call.kind) {
    case "sdk":
      return `${call.client}Client${call.addressing === "virtual" ? " (virtual-hosted)" : ""}${
        call.region === undefined ? "" : ` [${call.region}]`
      } → ${call.command}Command`;
    case "sdk-upload":
      return `lib-storage Upload ${call.size / 1024 / 1024} MiB`;
    case "sdk-presign":
      return `getSignedUrl(${call.method}) + fetch`;
    case "cli":
      return `aws ${call.args.join(" ")}${call.presignFetch === undefined ? "" : " + fetch"}`;
    case "boto3":
      return `${call.service}.${call.method}(${call.fetch === undefined ? "" : "…"})${call.fetch === undefined ? "" : " + urllib"}${
        call.region === undefined ? "" : ` [${call.region}]`
      }`;
  }
}

function expectedEvents(row: CompatCase): string {
  const names =
    typeof row.events === "string"
      ? row.events
      : Object.entries(row.events)
          .map(([name, n]) => (n === 1 ? name : `${name}×${n}`))
          .join(", ");
  return row.refusedWith === undefined ? names : `${names}, refused: ${row.refusedWith}`;
}

function cell(results: CompatRowResult[]): string {
  if (results.length === 0) return "–";
  const pass = results.filter((r) => r.status === "pass").length;
  const fail = results.filter((r) => r.status === "fail").length;
  const pending = results.filter((r) => r.status === "pending").length;
  return [pass > 0 ? `${pass} pass` : "", fail > 0 ? `${fail} FAIL` : "", pending > 0 ? `${pending} pending` : ""]
    .filter((s) => s !== "")
    .join(", ");
}

const escapeCell = (s: string): string => s.replaceAll("|", "\\|").replaceAll("\n", " ");

/** A Markdown table with padded columns, the way the repository's formatter (Biome) prints it. */
function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

/** The service × client grid of one mode (pass/fail/pending counts). */
export function renderSummaryGrid(results: CompatRowResult[], mode: CompatMode): string {
  const inMode = results.filter((r) => r.row.mode === mode);
  const services = [...new Set(results.map((r) => r.row.service))];
  const body = services.map((service) => [
    service,
    ...COMPAT_CLIENTS.map((c) => cell(inMode.filter((r) => r.row.client === c && r.row.service === service))),
  ]);
  body.push(["**all**", ...COMPAT_CLIENTS.map((c) => cell(inMode.filter((r) => r.row.client === c)))]);
  return table([`${mode} mode`, ...COMPAT_CLIENTS], body);
}

function totals(results: CompatRowResult[]): string {
  const pass = results.filter((r) => r.status === "pass").length;
  const fail = results.filter((r) => r.status === "fail").length;
  const pending = results.filter((r) => r.status === "pending").length;
  return `${pass} pass, ${fail} fail, ${pending} pending of ${results.length}`;
}

const HOW_TO_READ = [
  "## How to read this file",
  "",
  "- A **row** of the big table is one call of one real client (`call` says how it is made) and the audit",
  "  events it must produce (`expected events`: exactly these, one each unless `×n`, all allowed, without",
  "  errorCode, under the row's own principal, with the row's resource ARNs). `moto` is the upstream:",
  "  signature-verifying unless moto's own verifier false-alarms on the call (then a non-verifying moto).",
  "  `refused: <Code>` rows assert a refusal instead: the client gets that AWS error from the edge and each",
  "  event is a DENY with that errorCode, still under the row's (claimed) principal.",
  "- Each row runs in **two modes**, one status column each:",
  "  - `endpoint`: the client is pointed at the edge (`AWS_ENDPOINT_URL`, `--endpoint-url` for aws CLI v2 2.9",
  "    and `aws sqs`, `endpoint` for SDK v3), plain HTTP; the events must not carry `tlsDetails`.",
  "  - `proxy`: no endpoint override; `HTTPS_PROXY` is the edge's CONNECT proxy and the Tollgate CA",
  "    (`$TOLLGATE_HOME/ca.pem`) is trusted through `AWS_CA_BUNDLE` (aws CLI, boto3) or the CONNECT agent's",
  "    `ca` (SDK v3 ignores `HTTPS_PROXY`; the agent is test/support/connect-tunnel-agent.ts). Every event",
  "    must have arrived over the proxy's TLS with an `*.amazonaws.com` Host (`tlsDetails.clientProvidedHostHeader`,",
  "    listed in the last column: a `<bucket>.s3.…` host is virtual-hosted S3).",
  "- A status is `pass`, `FAIL: <what was wrong>`, or `pending [k]`: the row is listed but not asserted, for",
  "  the reason given as note [k] under the table (`COMPAT_INCLUDE_PENDING=1` runs pending rows to see",
  "  whether they pass now). No row is skipped silently: every row of `cases.ts` is here in both modes.",
  "- The grids count rows per service and client, one grid per mode.",
].join("\n");

/** The whole report: grids, then every row in both modes (no timings, so the file only changes with results). */
export function renderMatrixReport(results: CompatRowResult[]): string {
  const notes: string[] = [];
  const noteOf = (reason: string): number => {
    const i = notes.indexOf(reason);
    if (i >= 0) return i + 1;
    notes.push(reason);
    return notes.length;
  };
  const statusOf = (r: CompatRowResult | undefined): string => {
    if (r === undefined) return "–";
    if (r.status === "pending") {
      return `pending [${noteOf(r.row.pending ?? "")}]${r.triedPasses === true ? " (passes now: flip it)" : ""}`;
    }
    return r.status === "fail" ? `FAIL: ${r.problems.join("; ")}` : "pass";
  };
  // One line per client × service × operation, its modes side by side (cases.ts lists the modes together).
  const lines = new Map<string, Partial<Record<CompatMode, CompatRowResult>>>();
  for (const r of results) {
    const key = JSON.stringify([r.row.client, r.row.service, r.row.operation]);
    lines.set(key, { ...lines.get(key), [r.row.mode]: r });
  }
  const body = [...lines.values()].map((byMode) => {
    const r = (byMode.endpoint ?? byMode.proxy) as CompatRowResult;
    return [
      r.row.client,
      r.row.service,
      escapeCell(r.row.operation),
      `\`${escapeCell(describeCall(r.row.call))}\``,
      escapeCell(expectedEvents(r.row)),
      r.row.needs === "verifying-moto" ? "verifying" : "non-verifying",
      ...COMPAT_MODES.map((m) => escapeCell(statusOf(byMode[m]))),
      escapeCell(byMode.proxy?.hosts.join(", ") ?? ""),
    ];
  });
  const byMode = COMPAT_MODES.map((m) => `${m} mode: ${totals(results.filter((r) => r.row.mode === m))}`).join("; ");
  return [
    "# Compatibility matrix (client × service × operation × mode)",
    "",
    "Generated by `npx vitest run --project e2e test/compat/matrix.e2e.test.ts` from `test/compat/cases.ts`; do not edit.",
    "Each row: a real client against `tollgate dev --proxy-listen` (upstream: moto_server, signature-verifying",
    "unless noted), its own principal, and exactly the expected audit events, allowed, without errorCode.",
    "",
    `**${totals(results)} rows** (${byMode}).`,
    "",
    HOW_TO_READ,
    "",
    "## Summary",
    "",
    ...COMPAT_MODES.flatMap((m) => [renderSummaryGrid(results, m), ""]),
    "## Rows",
    "",
    table(
      ["client", "service", "operation", "call", "expected events", "moto", ...COMPAT_MODES, "Host through the proxy"],
      body,
    ),
    "",
    ...notes.map((n, i) => `- [${i + 1}] ${escapeCell(n)}`),
    ...(notes.length > 0 ? [""] : []),
  ].join("\n");
}
