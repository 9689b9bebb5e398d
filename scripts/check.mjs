// One check for CI and developers: lint, proto lint, generated-code drift, typecheck.
import { execFileSync } from "node:child_process";

function run(cmd, args, opts = {}) {
  process.stdout.write(`$ ${cmd} ${args.join(" ")}\n`);
  execFileSync(cmd, args, { stdio: "inherit", ...opts });
}

run("npx", ["biome", "check", "."]);
run("npx", ["buf", "lint"]);
run("npx", ["buf", "generate"], { cwd: "proto" });
const drift = execFileSync("git", ["status", "--porcelain", "--", "proto/src/gen"], { encoding: "utf8" });
if (drift.trim() !== "") {
  process.stderr.write(`generated code is out of date; run \`npm run generate\` and commit:\n${drift}`);
  process.exit(1);
}
run("npm", ["run", "generate:aws-models", "-w", "@tollgate/edge-agent"]);
const modelDrift = execFileSync("git", ["status", "--porcelain", "--", "edge-agent/src/gen"], { encoding: "utf8" });
if (modelDrift.trim() !== "") {
  process.stderr.write(
    `generated AWS models are out of date; run \`npm run generate:aws-models -w @tollgate/edge-agent\` and commit:\n${modelDrift}`,
  );
  process.exit(1);
}
run("npx", ["tsc", "-b"]);
run("npx", ["tsc", "-p", "test", "--noEmit"]);
process.stdout.write("check: ok\n");
