/** Where commands write; main wires it to process.stdout/stderr, tests to buffers. */
export interface CliIo {
  /** Writes to stdout, as is. */
  out(text: string): void;
  /** Writes to stderr, as is. */
  err(text: string): void;
}

/** Reads a whole stream (stdin) as UTF-8 and drops one trailing newline. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}
