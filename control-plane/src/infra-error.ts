import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "./logger.js";

/** Backing services whose failures surface as `Code.Unavailable`. */
export type InfraComponent = "redis" | "nats" | "audit-index";

const LABEL: Record<InfraComponent, string> = {
  redis: "registry store unavailable",
  nats: "audit stream unavailable",
  "audit-index": "audit index unavailable",
};

/**
 * The one place that turns errors into what a client sees. A `ConnectError` passes through;
 * a failure of a backing service becomes `Code.Unavailable`, anything else `Code.Internal`.
 * The original error is kept in `cause` (and logged) but never put in the client message.
 */
export function toConnectError(err: unknown, component?: InfraComponent, logger?: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  if (component !== undefined) {
    logger?.warn({ err, component }, LABEL[component]);
    return new ConnectError(LABEL[component], Code.Unavailable, undefined, undefined, err);
  }
  logger?.error({ err }, "internal error");
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** Runs `fn`, mapping a thrown error with {@link toConnectError} for `component`. */
export async function withInfra<T>(component: InfraComponent, fn: () => Promise<T> | T, logger?: Logger): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toConnectError(err, component, logger);
  }
}

/**
 * Safety net: maps any error a handler lets escape (unary or mid-stream) with
 * {@link toConnectError}, so no raw error message reaches a client.
 */
export function createErrorMappingInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      throw toConnectError(err, undefined, logger);
    }
    if (!res.stream) return res;
    const inner = res.message;
    async function* mapped(): AsyncGenerator<(typeof res)["message"] extends AsyncIterable<infer M> ? M : never> {
      try {
        yield* inner as AsyncIterable<never>;
      } catch (err) {
        throw toConnectError(err, undefined, logger);
      }
    }
    return { ...res, message: mapped() };
  };
}
