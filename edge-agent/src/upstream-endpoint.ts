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

/** Services whose single global endpoint lives in us-east-1. */
const GLOBAL_SERVICES = new Set(["iam", "cloudfront", "route53", "organizations", "waf", "globalaccelerator"]);

/** Region a service is signed with: its home region for global services, else the caller's. */
export function upstreamSigningRegion(signingName: string, region: string): string {
  return GLOBAL_SERVICES.has(signingName) ? "us-east-1" : region;
}

/**
 * Resolves the upstream for a call. With a connection endpoint (an emulator, a VPC endpoint)
 * every service goes there; otherwise the public AWS endpoint for the service and region.
 * The Host is always derived here, never from client headers.
 */
export function resolveUpstreamTarget(endpoint: string, signingName: string, region: string): UpstreamTarget {
  const signingRegion = upstreamSigningRegion(signingName, region);
  let url: URL;
  if (endpoint !== "") {
    url = new URL(endpoint);
  } else if (GLOBAL_SERVICES.has(signingName)) {
    url = new URL(`https://${signingName}.amazonaws.com`);
  } else {
    url = new URL(`https://${signingName}.${region}.amazonaws.com`);
  }
  const protocol = url.protocol === "http:" ? "http:" : "https:";
  const port = url.port === "" ? (protocol === "http:" ? 80 : 443) : Number(url.port);
  return { protocol, hostname: url.hostname, port, host: url.host, signingRegion };
}
