#!/usr/bin/env node
// Regenerates docs/cli.md from `tollgate <command> --help` (the built CLI: run `npm run build` first).
// Walks the command tree through each help's "Commands:" section; lists the root and every leaf.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const cli = join(root, "sdk", "dist", "cli", "main.js");

function help(path) {
  return execFileSync(process.execPath, [cli, ...path, "--help"], {
    encoding: "utf8",
    env: { ...process.env, COLUMNS: "80" },
  }).trimEnd();
}

function subcommands(text) {
  const i = text.indexOf("\nCommands:\n");
  if (i === -1) return [];
  return text
    .slice(i + "\nCommands:\n".length)
    .split("\n")
    .map((line) => /^ {2}([a-z][a-z0-9-]*)/.exec(line)?.[1])
    .filter((name) => name !== undefined && name !== "help");
}

const sections = [];
function walk(path) {
  const text = help(path);
  const subs = subcommands(text);
  if (path.length === 0 || subs.length === 0)
    sections.push(`## tollgate ${path.join(" ")}\n\n\`\`\`\n${text}\n\`\`\`\n`);
  for (const sub of subs) walk([...path, sub]);
}
walk([]);

const intro =
  "# The `tollgate` CLI\n\nGenerated from `tollgate <command> --help` by `node scripts/generate-cli-docs.mjs`; the CLI reads `TOLLGATE_HOME`, `TOLLGATE_API_URL`, `TOLLGATE_ADMIN_TOKEN`, `TOLLGATE_NATS_URL`, `TOLLGATE_REDIS_URL` (see [contracts](contracts.md)).\n";
writeFileSync(join(root, "docs", "cli.md"), `${intro}\n${sections.join("\n")}`);
