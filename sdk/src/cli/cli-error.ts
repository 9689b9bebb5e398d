import { Code, ConnectError } from "@connectrpc/connect";

/** An error meant for the user: main prints `tollgate: <message>` and exits 1. */
export class CliError extends Error {
  override readonly name = "CliError";
}

/** One line describing `error` for the terminal, without a stack trace. */
export function describeError(error: unknown): string {
  if (error instanceof ConnectError) {
    return `${error.rawMessage || "request failed"} (${Code[error.code] ?? error.code})`;
  }
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}
