import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { EdgeService, WebIdentityService } from "@tollgate/proto";
import type { Logger } from "./logger.js";
import { hashToken } from "./state-store.js";

/** Who a request authenticated as. */
export type CallerRole = "admin" | "edge";

/** Context value set by the auth interceptor; handlers read it with `ctx.values.get(callerKey)`. */
export const callerKey = createContextKey<{ role: CallerRole } | undefined>(undefined, {
  description: "tollgate caller",
});

/** Hashes of the accepted bearer tokens. */
export interface TokenHashes {
  adminTokenSha256: Uint8Array;
  edgeTokenSha256: Uint8Array;
}

/** Services the edge token may call. */
const EDGE_SERVICES: ReadonlySet<string> = new Set([EdgeService.typeName, WebIdentityService.typeName]);

function bearer(header: string | null): string | undefined {
  if (header === null) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1];
}

function matches(presented: Buffer, stored: Uint8Array): boolean {
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/**
 * Connect interceptor enforcing `authorization: Bearer <token>`: the admin token may call every
 * service, the edge token only `EdgeService`. Each use of the break-glass admin token is logged
 * (never the token itself).
 */
export function createTokenAuthInterceptor(tokens: TokenHashes, logger: Logger): Interceptor {
  return (next) => async (req) => {
    // Already authenticated by an earlier interceptor (an enrolled edge's signature, edge-auth.ts).
    if (req.contextValues.get(callerKey) !== undefined) return await next(req);
    const token = bearer(req.header.get("authorization"));
    if (token === undefined) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    const presented = hashToken(token);
    // Compare against both so the timing does not reveal which one was close.
    const isAdmin = matches(presented, tokens.adminTokenSha256);
    const isEdge = matches(presented, tokens.edgeTokenSha256);
    let role: CallerRole;
    if (isAdmin) {
      role = "admin";
      logger.info(
        { event: "admin_token_used", procedure: `/${req.service.typeName}/${req.method.name}` },
        "break-glass admin token used",
      );
    } else if (isEdge) {
      if (!EDGE_SERVICES.has(req.service.typeName)) {
        throw new ConnectError("the edge token may only call EdgeService", Code.PermissionDenied);
      }
      role = "edge";
    } else {
      throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    }
    req.contextValues.set(callerKey, { role });
    return await next(req);
  };
}
