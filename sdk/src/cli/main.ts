#!/usr/bin/env node
/**
 * `tollgate`: the command-line client of the control plane, and `tollgate dev`, the local
 * all-in-one. The only place the CLI reads the environment.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_AUDIT_STREAM, DEFAULT_AUDIT_SUBJECT_PREFIX } from "../audit-subjects.js";
import { type ControlPlaneClient, createControlPlaneClient } from "../control-plane-client.js";
import { CliError, describeError } from "./cli-error.js";
import {
  type AuditFilterFlags,
  addAuditIntegrityCommands,
  auditQueryCommand,
  auditTailCommand,
  buildAuditFilter,
} from "./commands/audit.js";
import {
  connectionCreateCommand,
  connectionDeleteCommand,
  connectionGetCommand,
  connectionListCommand,
} from "./commands/connection.js";
import {
  issueCredentialCommand,
  listCredentialsCommand,
  listRevocationsCommand,
  type RevokeTarget,
  revokeCommand,
} from "./commands/credentials.js";
import { runDev } from "./commands/dev.js";
import { edgeEnrollTokenCommand, edgeListCommand, edgeRevokeCommand, parseLabels } from "./commands/edge.js";
import { type LoginMethod, loginCommand, logoutCommand, whoAmICommand } from "./commands/login.js";
import {
  issueServiceAccountCredentialCommand,
  readApiKeyFile,
  serviceAccountCreateCommand,
  serviceAccountDeleteCommand,
  serviceAccountListCommand,
  serviceAccountRotateKeyCommand,
  trustCreateCommand,
  trustDeleteCommand,
  trustListCommand,
} from "./commands/workload.js";
import { type ApiContext, resolveApiUrl, resolveBearerToken } from "./config.js";
import { parseDurationMs, parseDurationSeconds } from "./duration.js";
import { CREDENTIAL_FORMATS, type CredentialFormat } from "./format.js";
import { type CliIo, readAll } from "./io.js";

/** The environment the CLI uses, read once. */
interface CliEnvironment {
  home: string;
  apiUrl: string | undefined;
  adminToken: string | undefined;
  sessionToken: string | undefined;
  natsUrl: string;
  auditStream: string;
  auditSubjectPrefix: string;
  redisUrl: string;
  awsAccessKeyId: string | undefined;
  awsSecretAccessKey: string | undefined;
  awsSessionToken: string | undefined;
}

function readEnvironment(env: NodeJS.ProcessEnv): CliEnvironment {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
  return {
    home: get("TOLLGATE_HOME") ?? join(homedir(), ".tollgate"),
    apiUrl: get("TOLLGATE_API_URL"),
    adminToken: get("TOLLGATE_ADMIN_TOKEN"),
    sessionToken: get("TOLLGATE_SESSION_TOKEN"),
    natsUrl: get("TOLLGATE_NATS_URL") ?? "nats://127.0.0.1:4222",
    auditStream: get("TOLLGATE_AUDIT_STREAM") ?? DEFAULT_AUDIT_STREAM,
    auditSubjectPrefix: get("TOLLGATE_AUDIT_SUBJECT_PREFIX") ?? DEFAULT_AUDIT_SUBJECT_PREFIX,
    redisUrl: get("TOLLGATE_REDIS_URL") ?? "redis://127.0.0.1:6379",
    awsAccessKeyId: get("AWS_ACCESS_KEY_ID"),
    awsSecretAccessKey: get("AWS_SECRET_ACCESS_KEY"),
    awsSessionToken: get("AWS_SESSION_TOKEN"),
  };
}

const io: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Aborts on the first SIGINT/SIGTERM; a second one exits at once (children are killed on exit). */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(1);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return controller.signal;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("must be a positive integer");
  }
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A future time: a duration from now (`24h`) or an ISO 8601 time. */
function parseFutureMs(text: string, nowMs: number, what: string): number {
  if (/^(\d+(ms|s|m|h|d))+$/.test(text.trim())) return nowMs + parseDurationMs(text, what);
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new CliError(`invalid ${what} "${text}" (use a duration such as 24h, or an ISO 8601 time)`);
  return ms;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function buildProgram(env: CliEnvironment): Command {
  const program = new Command("tollgate")
    .description("Identity-aware audit gateway between AI agents and AWS")
    .version(packageVersion())
    .configureOutput({
      outputError: (message, write) => write(`tollgate: ${message.replace(/^error: /, "")}`),
    });

  const apiContext = (opts: { api?: string }): ApiContext => ({
    home: env.home,
    apiFlag: opts.api,
    apiUrlEnv: env.apiUrl,
    adminTokenEnv: env.adminToken,
    sessionTokenEnv: env.sessionToken,
  });
  const client = (opts: { api?: string }): ControlPlaneClient => {
    const context = apiContext(opts);
    return createControlPlaneClient({ baseUrl: resolveApiUrl(context), token: resolveBearerToken(context) });
  };
  const apiOption = (): Option =>
    new Option("--api <url>", "control plane URL (TOLLGATE_API_URL, dev.json, http://127.0.0.1:8788)");

  program
    .command("dev")
    .description("run a local control plane and edge (with moto as AWS if no credentials are given)")
    .option("--upstream-endpoint <url>", "upstream AWS endpoint (e.g. an emulator)")
    .option("--upstream-access-key-id <id>", "upstream access key id")
    .option("--upstream-secret-access-key <secret>", "upstream secret access key")
    .option("--region <region>", "region of the default connection", "us-east-1")
    .option("--listen <host:port>", "edge listen address", "127.0.0.1:8787")
    .option("--api <host:port>", "control plane listen address", "127.0.0.1:8788")
    .option("--proxy-listen <host:port>", "also serve HTTPS_PROXY mode on this address (CA in $TOLLGATE_HOME/ca.pem)")
    .action(
      async (opts: {
        upstreamEndpoint?: string;
        upstreamAccessKeyId?: string;
        upstreamSecretAccessKey?: string;
        region: string;
        listen: string;
        api: string;
        proxyListen?: string;
      }) => {
        await runDev(
          {
            home: env.home,
            natsUrl: env.natsUrl,
            redisUrl: env.redisUrl,
            region: opts.region,
            edgeListen: opts.listen,
            apiListen: opts.api,
            proxyListen: opts.proxyListen,
            upstream: {
              endpoint: opts.upstreamEndpoint,
              accessKeyId: opts.upstreamAccessKeyId,
              secretAccessKey: opts.upstreamSecretAccessKey,
            },
            ambientAws: {
              accessKeyId: env.awsAccessKeyId,
              secretAccessKey: env.awsSecretAccessKey,
              sessionToken: env.awsSessionToken,
            },
            childEnv: process.env,
            signal: interruptSignal(),
          },
          io,
        );
      },
    );

  const credentials = program.command("credentials").description("gateway credentials for agents");
  credentials
    .command("issue")
    .description(
      "issue a short-lived gateway credential: as admin for --principal, or for a service account with --api-key-file",
    )
    .addOption(new Option("--principal <name>", "principal the credential acts as (admin)").conflicts("apiKeyFile"))
    .option(
      "--api-key-file <file>",
      "a service account's API key: issue that account's credential (credential_process)",
    )
    .option("--connection <name>", "connection it is scoped to (with --principal)", "default")
    .option("--ttl <duration>", "lifetime, e.g. 15m, 1h, 12h (default 1h; with --api-key-file the account's)")
    .addOption(new Option("--format <format>", "output format").choices(CREDENTIAL_FORMATS).default("env"))
    .addOption(apiOption())
    .action(
      async (opts: {
        principal?: string;
        apiKeyFile?: string;
        connection: string;
        ttl?: string;
        format: CredentialFormat;
        api?: string;
      }) => {
        if (opts.apiKeyFile !== undefined) {
          const apiKey = readApiKeyFile(opts.apiKeyFile);
          await issueServiceAccountCredentialCommand(
            createControlPlaneClient({ baseUrl: resolveApiUrl(apiContext(opts)), token: apiKey }),
            {
              ttlSeconds: opts.ttl === undefined ? 0 : parseDurationSeconds(opts.ttl, "--ttl"),
              format: opts.format,
            },
            io,
          );
          return;
        }
        if (opts.principal === undefined) {
          throw new InvalidArgumentError("one of --principal, --api-key-file is required");
        }
        await issueCredentialCommand(
          client(opts),
          {
            principal: opts.principal,
            connection: opts.connection,
            ttlSeconds: parseDurationSeconds(opts.ttl ?? "1h", "--ttl"),
            format: opts.format,
          },
          io,
        );
      },
    );

  credentials
    .command("list")
    .description("list unexpired credentials (never their secrets)")
    .option("--principal <name>", "only this principal's", "")
    .option("--json", "one JSON object per line", false)
    .addOption(apiOption())
    .action(async (opts: { principal: string; json: boolean; api?: string }) => {
      await listCredentialsCommand(client(opts), opts, io);
    });
  credentials
    .command("revoke")
    .description("revoke a credential or every credential of a principal; every edge refuses it within 5 s")
    .addOption(new Option("--credential-id <id>", "revoke this credential").conflicts(["accessKeyId", "principal"]))
    .addOption(
      new Option("--access-key-id <id>", "revoke the credential with this access key id").conflicts("principal"),
    )
    .option("--principal <name>", "revoke every credential of this principal (and refuse new ones)")
    .option("--until <time>", "with --principal: until then, a duration from now (24h) or ISO 8601 (default 12h)")
    .addOption(apiOption())
    .action(
      async (opts: {
        credentialId?: string;
        accessKeyId?: string;
        principal?: string;
        until?: string;
        api?: string;
      }) => {
        let target: RevokeTarget;
        if (opts.credentialId !== undefined) target = { credentialId: opts.credentialId };
        else if (opts.accessKeyId !== undefined) target = { accessKeyId: opts.accessKeyId };
        else if (opts.principal !== undefined) {
          target = {
            principal: opts.principal,
            untilMs: opts.until === undefined ? undefined : parseFutureMs(opts.until, Date.now(), "--until"),
          };
        } else throw new CliError("give one of --credential-id, --access-key-id, --principal");
        if (opts.until !== undefined && !("principal" in target)) throw new CliError("--until goes with --principal");
        await revokeCommand(client(opts), target, io);
      },
    );
  credentials
    .command("revocations")
    .description("list the revocations in force")
    .option("--json", "one JSON object per line", false)
    .addOption(apiOption())
    .action(async (opts: { json: boolean; api?: string }) => {
      await listRevocationsCommand(client(opts), opts, io);
    });

  const edge = program.command("edge").description("enroll, list and revoke edge agents");
  edge
    .command("enroll-token")
    .description("create a one-time token an edge enrolls with (TOLLGATE_EDGE_ENROLL_TOKEN)")
    .requiredOption("--name <edge>", "name the edge will have")
    .option("--label <key=value>", "label recorded with the edge, e.g. vpc=vpc-123 (repeatable)", collect, [])
    .option("--ttl <duration>", "how long the token is valid, e.g. 15m, 1h, 7d", "1h")
    .option("--json", "as JSON", false)
    .addOption(apiOption())
    .action(async (opts: { name: string; label: string[]; ttl: string; json: boolean; api?: string }) => {
      await edgeEnrollTokenCommand(
        client(opts),
        {
          name: opts.name,
          labels: parseLabels(opts.label),
          ttlSeconds: parseDurationSeconds(opts.ttl, "--ttl"),
          json: opts.json,
        },
        io,
      );
    });
  edge
    .command("list")
    .description("list enrolled edges: labels, key ids, enrollment, last heartbeat, status")
    .option("--json", "one JSON object per line", false)
    .addOption(apiOption())
    .action(async (opts: { json: boolean; api?: string }) => {
      await edgeListCommand(client(opts), opts, io);
    });
  edge
    .command("revoke")
    .description("revoke an edge: the control plane refuses it from now on")
    .argument("<name>", "edge name")
    .addOption(apiOption())
    .action(async (name: string, opts: { api?: string }) => {
      await edgeRevokeCommand(client(opts), { name }, io);
    });

  const audit = program.command("audit").description("query and follow audit events");
  const withFilters = (command: Command): Command =>
    command
      .option("--principal <name>", "only this principal")
      .option("--connection <name>", "only this connection")
      .option("--service <name>", "only this service, e.g. s3")
      .option("--operation <name>", "only this operation, e.g. PutObject")
      .option("--since <time>", "from this time: a duration ago (15m) or ISO 8601")
      .option("--until <time>", "before this time: a duration ago or ISO 8601")
      .option("--json", "one CloudTrail-style JSON object per line", false)
      .addOption(apiOption());
  withFilters(audit.command("query").description("search recorded events, newest first"))
    .option("--resource <arn>", "only events naming this resource ARN")
    .addOption(new Option("--decision <decision>", "only allowed or denied calls").choices(["allow", "deny"]))
    .option("--error-code <code>", "only events with this error code, e.g. AccessDenied")
    .option("--limit <n>", "maximum events", parsePositiveInt, 100)
    .action(async (opts: AuditFilterFlags & { limit: number; json: boolean; api?: string }) => {
      await auditQueryCommand(
        client(opts),
        { filter: buildAuditFilter(opts, Date.now()), limit: opts.limit, json: opts.json },
        io,
      );
    });
  withFilters(audit.command("tail").description("print events as they happen, until Ctrl-C")).action(
    async (opts: AuditFilterFlags & { json: boolean; api?: string }) => {
      await auditTailCommand(
        client(opts),
        { filter: buildAuditFilter(opts, Date.now()), json: opts.json, signal: interruptSignal() },
        io,
      );
    },
  );

  addAuditIntegrityCommands(audit, {
    natsUrl: env.natsUrl,
    auditStream: env.auditStream,
    auditSubjectPrefix: env.auditSubjectPrefix,
    client,
    apiOption,
    io,
  });

  const connection = program.command("connection").description("manage upstream AWS connections");
  connection
    .command("create")
    .description("register a connection (upstream AWS account and credentials)")
    .argument("<name>", "connection name")
    .option("--region <region>", "default region", "us-east-1")
    .option("--upstream-endpoint <url>", "upstream endpoint (empty: real AWS)", "")
    .option("--upstream-access-key-id <id>", "upstream access key id", "")
    .addOption(
      new Option("--upstream-secret-access-key <secret>", "upstream secret (prefer the -stdin variant)").conflicts(
        "upstreamSecretAccessKeyStdin",
      ),
    )
    .option("--upstream-secret-access-key-stdin", "read the upstream secret from stdin", false)
    .option("--account-id <id>", "upstream AWS account id", "")
    .addOption(
      new Option("--credential-source <source>", "base upstream credentials: static keys, or the edge's own")
        .choices(["static", "edge"])
        .default("static"),
    )
    .option("--role-arn <arn>", "assume this role per principal (session name and SourceIdentity = principal)", "")
    .option("--external-id <id>", "ExternalId for AssumeRole", "")
    .option("--replace", "replace an existing connection of this name", false)
    .addOption(apiOption())
    .action(
      async (
        name: string,
        opts: {
          region: string;
          upstreamEndpoint: string;
          upstreamAccessKeyId: string;
          upstreamSecretAccessKey?: string;
          upstreamSecretAccessKeyStdin: boolean;
          accountId: string;
          credentialSource: "static" | "edge";
          roleArn: string;
          externalId: string;
          replace: boolean;
          api?: string;
        },
      ) => {
        let secret = opts.upstreamSecretAccessKey ?? "";
        if (opts.upstreamSecretAccessKey !== undefined) {
          io.err(
            "tollgate: warning: a secret on the command line stays in shell history and process lists; prefer --upstream-secret-access-key-stdin\n",
          );
        }
        if (opts.upstreamSecretAccessKeyStdin) secret = await readAll(process.stdin);
        await connectionCreateCommand(
          client(opts),
          {
            name,
            region: opts.region,
            upstreamEndpoint: opts.upstreamEndpoint,
            upstreamAccessKeyId: opts.upstreamAccessKeyId,
            upstreamSecretAccessKey: secret,
            accountId: opts.accountId,
            credentialSource: opts.credentialSource,
            roleArn: opts.roleArn,
            externalId: opts.externalId,
            replace: opts.replace,
          },
          io,
        );
      },
    );
  connection
    .command("list")
    .description("list connections")
    .option("--json", "one JSON object per line", false)
    .addOption(apiOption())
    .action(async (opts: { json: boolean; api?: string }) => {
      await connectionListCommand(client(opts), { json: opts.json }, io);
    });
  connection
    .command("get")
    .description("show one connection")
    .argument("<name>", "connection name")
    .option("--json", "as JSON", false)
    .addOption(apiOption())
    .action(async (name: string, opts: { json: boolean; api?: string }) => {
      await connectionGetCommand(client(opts), { name, json: opts.json }, io);
    });
  connection
    .command("delete")
    .description("delete a connection")
    .argument("<name>", "connection name")
    .addOption(apiOption())
    .action(async (name: string, opts: { api?: string }) => {
      await connectionDeleteCommand(client(opts), { name }, io);
    });

  const trust = program
    .command("trust")
    .description("trust rules: which web identity tokens (JWTs) may get credentials for a connection");
  trust
    .command("create")
    .description("admit tokens of an OIDC issuer to a connection (STS AssumeRoleWithWebIdentity at the edge)")
    .argument("<name>", "rule name")
    .requiredOption("--connection <name>", "connection the tokens get credentials for")
    .requiredOption("--issuer <url>", "required iss of the token")
    .option("--jwks-url <url>", "JWKS URL (default: discovered from <issuer>/.well-known/openid-configuration)", "")
    .option("--audience <aud>", "accepted aud (repeatable; at least one)", collect, [])
    .option("--subject <glob>", "glob the token's sub must match (* and ?)", "")
    .option("--claim <claim=glob>", "a claim that must match a glob (repeatable)", collect, [])
    .option("--claim-regex <claim=regex>", "a claim that must match a regular expression (repeatable)", collect, [])
    .option("--principal <template>", "principal template, {claim} replaced by the claim", "{sub}")
    .option("--groups-claim <claim>", "claim holding the caller's groups", "")
    .option("--max-ttl <duration>", "longest credential issued, e.g. 15m, 1h, 12h", "1h")
    .option("--replace", "replace an existing rule of this name", false)
    .addOption(apiOption())
    .action(
      async (
        name: string,
        opts: {
          connection: string;
          issuer: string;
          jwksUrl: string;
          audience: string[];
          subject: string;
          claim: string[];
          claimRegex: string[];
          principal: string;
          groupsClaim: string;
          maxTtl: string;
          replace: boolean;
          api?: string;
        },
      ) => {
        await trustCreateCommand(
          client(opts),
          {
            name,
            connection: opts.connection,
            issuer: opts.issuer,
            jwksUrl: opts.jwksUrl,
            audiences: opts.audience,
            subject: opts.subject,
            claims: opts.claim,
            claimRegexes: opts.claimRegex,
            principal: opts.principal,
            groupsClaim: opts.groupsClaim,
            maxTtlSeconds: parseDurationSeconds(opts.maxTtl, "--max-ttl"),
            replace: opts.replace,
          },
          io,
        );
      },
    );
  trust
    .command("list")
    .description("list trust rules")
    .option("--connection <name>", "only this connection's", "")
    .option("--json", "one JSON object per line", false)
    .addOption(apiOption())
    .action(async (opts: { connection: string; json: boolean; api?: string }) => {
      await trustListCommand(client(opts), opts, io);
    });
  trust
    .command("delete")
    .description("delete a trust rule")
    .argument("<name>", "rule name")
    .requiredOption("--connection <name>", "its connection")
    .addOption(apiOption())
    .action(async (name: string, opts: { connection: string; api?: string }) => {
      await trustDeleteCommand(client(opts), { name, connection: opts.connection }, io);
    });

  const serviceAccount = program
    .command("service-account")
    .description("service accounts: agents without an IdP, authenticated by an API key");
  serviceAccount
    .command("create")
    .description("create a service account bound to a connection; prints its API key once")
    .argument("<name>", "service account name")
    .requiredOption("--connection <name>", "connection its credentials are scoped to")
    .option("--principal <name>", "principal its credentials act as (default sa:<name>)", "")
    .option("--ttl <duration>", "lifetime of its credentials, e.g. 15m, 1h, 12h", "1h")
    .option("--api-key-file <file>", "write the API key to this new file (0600) instead of stdout")
    .addOption(apiOption())
    .action(
      async (
        name: string,
        opts: { connection: string; principal: string; ttl: string; apiKeyFile?: string; api?: string },
      ) => {
        await serviceAccountCreateCommand(
          client(opts),
          {
            name,
            connection: opts.connection,
            principal: opts.principal,
            ttlSeconds: parseDurationSeconds(opts.ttl, "--ttl"),
            ...(opts.apiKeyFile !== undefined ? { apiKeyFile: opts.apiKeyFile } : {}),
          },
          io,
        );
      },
    );
  serviceAccount
    .command("list")
    .description("list service accounts (never their keys)")
    .option("--json", "one JSON object per line", false)
    .addOption(apiOption())
    .action(async (opts: { json: boolean; api?: string }) => {
      await serviceAccountListCommand(client(opts), opts, io);
    });
  serviceAccount
    .command("delete")
    .description("delete a service account; its API key stops working at once")
    .argument("<name>", "service account name")
    .addOption(apiOption())
    .action(async (name: string, opts: { api?: string }) => {
      await serviceAccountDeleteCommand(client(opts), { name }, io);
    });
  serviceAccount
    .command("rotate-key")
    .description("replace a service account's API key; the old key stops working at once")
    .argument("<name>", "service account name")
    .option("--api-key-file <file>", "write the new API key to this new file (0600) instead of stdout")
    .addOption(apiOption())
    .action(async (name: string, opts: { apiKeyFile?: string; api?: string }) => {
      await serviceAccountRotateKeyCommand(
        client(opts),
        { name, ...(opts.apiKeyFile !== undefined ? { apiKeyFile: opts.apiKeyFile } : {}) },
        io,
      );
    });

  program
    .command("login")
    .description("log in as a person (OIDC device flow by default) and keep the session in $TOLLGATE_HOME/session.json")
    .addOption(
      new Option("--browser", "OIDC authorization code + PKCE: print a URL, wait on a loopback redirect").conflicts(
        "saml",
      ),
    )
    .option("--saml", "SAML single sign-on through the control plane: print a URL, wait on a loopback redirect", false)
    .option("--timeout <duration>", "how long to wait for the login, e.g. 5m", "5m")
    .addOption(apiOption())
    .action(async (opts: { browser?: boolean; saml: boolean; timeout: string; api?: string }) => {
      const apiUrl = resolveApiUrl(apiContext(opts));
      const method: LoginMethod = opts.saml ? "saml" : opts.browser === true ? "browser" : "device";
      await loginCommand(
        createControlPlaneClient({ baseUrl: apiUrl }),
        (token) => createControlPlaneClient({ baseUrl: apiUrl, token }),
        {
          home: env.home,
          apiUrl,
          method,
          timeoutMs: parseDurationSeconds(opts.timeout, "--timeout") * 1000,
          signal: interruptSignal(),
        },
        io,
      );
    });
  program
    .command("whoami")
    .description("show who the CLI acts as (principal, roles, session expiry)")
    .option("--json", "as JSON", false)
    .addOption(apiOption())
    .action(async (opts: { json: boolean; api?: string }) => {
      await whoAmICommand(client(opts), { json: opts.json }, io);
    });
  program
    .command("logout")
    .description("revoke the session of `tollgate login` and delete $TOLLGATE_HOME/session.json")
    .action(async () => {
      await logoutCommand((token, baseUrl) => createControlPlaneClient({ baseUrl, token }), env.home, io);
    });

  return program;
}

/** Exits once stdout and stderr have flushed (they may be pipes). */
function exit(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

async function main(): Promise<void> {
  const env = readEnvironment(process.env);
  try {
    await buildProgram(env).parseAsync(process.argv);
    exit(0);
  } catch (error) {
    io.err(`tollgate: ${describeError(error)}\n`);
    exit(1);
  }
}

void main();
