import { toBinary } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  AuditService,
  ConnectionService,
  CredentialService,
  EdgeAdminService,
  EdgeEnrollmentService,
  EdgeService,
  IdentityService,
  ServiceAccountCredentialService,
  WebIdentityService,
  WorkloadService,
} from "@tollgate/proto";
import type { EdgeSigningKey } from "./audit-chain.js";
import { signEdgeRequest } from "./edge-request-signature.js";

/** Options for {@link createControlPlaneClient}. */
export interface ControlPlaneClientOptions {
  /** Control plane URL, e.g. `http://127.0.0.1:8788`. */
  baseUrl: string;
  /** Bearer token (admin, edge or agent credential), sent as `authorization`. */
  token?: string;
  /**
   * Sign every call as this enrolled edge (headers of `edge-request-signature.ts`) instead of
   * sending a bearer token. Unary calls only.
   */
  edgeAuth?: { edgeName: string; key: EdgeSigningKey };
  /** Default per-call timeout in milliseconds (30000); 0 disables it. A streaming call can also pass `timeoutMs: 0` as a call option. */
  timeoutMs?: number;
}

/** Typed clients for every control-plane service, over gRPC (HTTP/2). */
export interface ControlPlaneClient {
  connections: Client<typeof ConnectionService>;
  credentials: Client<typeof CredentialService>;
  audit: Client<typeof AuditService>;
  edge: Client<typeof EdgeService>;
  /** Trust rules and service accounts (admin). */
  workload: Client<typeof WorkloadService>;
  /** Web identity token exchange (edges). */
  webIdentity: Client<typeof WebIdentityService>;
  /** API key → gateway credential (the token is the service account's API key). */
  serviceAccountCredentials: Client<typeof ServiceAccountCredentialService>;
  edgeAdmin: Client<typeof EdgeAdminService>;
  edgeEnrollment: Client<typeof EdgeEnrollmentService>;
  identity: Client<typeof IdentityService>;
}

/** Creates a gRPC client for the control plane. */
export function createControlPlaneClient(options: ControlPlaneClientOptions): ControlPlaneClient {
  const interceptors: Interceptor[] = [];
  const token = options.token;
  if (token !== undefined && token !== "") {
    interceptors.push((next) => async (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return await next(req);
    });
  }
  const edgeAuth = options.edgeAuth;
  if (edgeAuth !== undefined) {
    interceptors.push((next) => async (req) => {
      if (req.stream) throw new Error("edge-signed calls must be unary");
      const headers = signEdgeRequest(
        edgeAuth.key,
        edgeAuth.edgeName,
        `/${req.service.typeName}/${req.method.name}`,
        toBinary(req.method.input, req.message),
      );
      for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
      return await next(req);
    });
  }
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    interceptors,
    ...(options.timeoutMs === 0 ? {} : { defaultTimeoutMs: options.timeoutMs ?? 30_000 }),
  });
  return {
    connections: createClient(ConnectionService, transport),
    credentials: createClient(CredentialService, transport),
    audit: createClient(AuditService, transport),
    edge: createClient(EdgeService, transport),
    workload: createClient(WorkloadService, transport),
    webIdentity: createClient(WebIdentityService, transport),
    serviceAccountCredentials: createClient(ServiceAccountCredentialService, transport),
    edgeAdmin: createClient(EdgeAdminService, transport),
    edgeEnrollment: createClient(EdgeEnrollmentService, transport),
    identity: createClient(IdentityService, transport),
  };
}
