/**
 * Where a call goes upstream and how it is signed there. Real AWS endpoints are derived from the
 * API models' metadata (endpoint prefix, global endpoint) and the partition's DNS suffix; a
 * connection endpoint (an emulator, a VPC endpoint) takes every service.
 */
import { awsModels } from "./aws-models.js";

/** Where a call goes upstream and how it is signed there. */
export interface UpstreamTarget {
  protocol: "http:" | "https:";
  hostname: string;
  port: number;
  /** Value for the Host header (includes a non-default port). */
  host: string;
  /** Region to sign with upstream (global services use their home region). */
  signingRegion: string;
}

/** What the classifier learnt about the call that decides its real AWS host (all optional). */
export interface UpstreamRoute {
  /** Model endpoint prefix (`Classification.endpointPrefix`), e.g. `"email"` for SESv2, `"monitoring"`. */
  endpointPrefix?: string;
  /** Model key (`Classification.apiService`), e.g. `"iam"`; used to find the global endpoint. */
  apiService?: string;
  /** S3 bucket addressed in the Host: stays virtual-hosted on real AWS. */
  s3Bucket?: string;
  s3Addressing?: "virtual" | "path";
}

/** Global services' home (signing) region and host per partition. */
function globalEndpoint(
  apiService: string | undefined,
  signingName: string,
  region: string,
): { host: string; signingRegion: string } | undefined {
  const models = awsModels();
  const model =
    (apiService !== undefined ? models.byKey(apiService) : undefined) ?? models.bySigningName(signingName)[0];
  const name = model?.endpointPrefix ?? signingName;
  if (model?.globalEndpoint === undefined) return undefined;
  if (region.startsWith("cn-")) {
    if (name === "iam") return { host: "iam.cn-north-1.amazonaws.com.cn", signingRegion: "cn-north-1" };
    if (name === "route53") return { host: "route53.amazonaws.com.cn", signingRegion: "cn-northwest-1" };
    return undefined;
  }
  if (region.startsWith("us-gov-")) {
    if (name === "iam" || name === "route53")
      return { host: `${name}.us-gov.amazonaws.com`, signingRegion: "us-gov-west-1" };
    return undefined;
  }
  if (/^(us-iso|us-isob|eu-isoe|us-isof)-/.test(region)) return undefined;
  return { host: model.globalEndpoint, signingRegion: "us-east-1" };
}

/** DNS suffix of the region's partition. */
function dnsSuffix(region: string): string {
  return region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
}

/** Region a service is signed with: its home region for global services, else the caller's. */
export function upstreamSigningRegion(signingName: string, region: string, route: UpstreamRoute = {}): string {
  return globalEndpoint(route.apiService, signingName, region)?.signingRegion ?? region;
}

/**
 * Resolves the upstream for a call. With a connection endpoint every service goes there;
 * otherwise the public AWS endpoint: the global one for global services (IAM, Route 53,
 * CloudFront ...), else `<endpointPrefix>.<region>.<partition suffix>`; virtual-hosted S3 stays
 * virtual-hosted. The Host is always derived here, never from client headers.
 */
export function resolveUpstreamTarget(
  endpoint: string,
  signingName: string,
  region: string,
  route: UpstreamRoute = {},
): UpstreamTarget {
  const global = globalEndpoint(route.apiService, signingName, region);
  const signingRegion = global?.signingRegion ?? region;
  let url: URL;
  if (endpoint !== "") {
    url = new URL(endpoint);
  } else if (global !== undefined) {
    url = new URL(`https://${global.host}`);
  } else {
    const prefix = route.endpointPrefix ?? awsModels().bySigningName(signingName)[0]?.endpointPrefix ?? signingName;
    const bucket = route.s3Addressing === "virtual" && route.s3Bucket !== undefined ? `${route.s3Bucket}.` : "";
    url = new URL(`https://${bucket}${prefix}.${region}.${dnsSuffix(region)}`);
  }
  const protocol = url.protocol === "http:" ? "http:" : "https:";
  const port = url.port === "" ? (protocol === "http:" ? 80 : 443) : Number(url.port);
  return { protocol, hostname: url.hostname, port, host: url.host, signingRegion };
}

/**
 * The path to send upstream: the classifier's `upstreamPath` (per-service prefix removed) or the
 * wire path, with a virtual-hosted bucket moved into the path when a connection endpoint (which
 * cannot resolve bucket host names) takes the call.
 */
export function upstreamRequestPath(
  endpoint: string,
  rawPath: string,
  classification: { upstreamPath?: string; s3Bucket?: string; s3Addressing?: "virtual" | "path" },
): string {
  const path = classification.upstreamPath ?? rawPath;
  if (endpoint === "" || classification.s3Addressing !== "virtual" || classification.s3Bucket === undefined) {
    return path;
  }
  return `/${encodeURIComponent(classification.s3Bucket)}${path === "/" ? "" : path}`;
}
