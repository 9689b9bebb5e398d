/**
 * S3 virtual-hosted addressing (`Host: bucket.s3.us-east-1.amazonaws.com`, path `/key`), as
 * clients send it through the HTTPS proxy with default AWS endpoints.
 */

/**
 * `<bucket>.s3[-fips][.dualstack][.<region>|-<region>].amazonaws.com[.cn]`. Other S3 endpoints
 * that put something before `.s3` (access points, S3 Control's account id, Object Lambda,
 * Outposts, directory buckets) use different labels (`s3-accesspoint`, `s3-control`, ...) and
 * do not match.
 */
const VIRTUAL_HOSTED_S3 =
  /^(.+)\.s3(?:-fips)?(?:\.dualstack)?(?:[.-](?:[a-z]{2}(?:-[a-z]+)+-\d+|external-1))?\.amazonaws\.com(?:\.cn)?$/;
/** Bucket names that are valid in a path (lower case, digits, dots, hyphens; 3 to 63 chars). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h;
  const colon = h.lastIndexOf(":");
  return (colon === -1 ? h : h.slice(0, colon)).replace(/\.$/, "");
}

/** The bucket named by a virtual-hosted S3 Host header (port ignored), else undefined. */
export function virtualHostedBucket(host: string, signingName: string): string | undefined {
  if (signingName !== "s3") return undefined;
  const m = VIRTUAL_HOSTED_S3.exec(hostName(host));
  const bucket = m?.[1];
  return bucket !== undefined && BUCKET_NAME.test(bucket) ? bucket : undefined;
}

/**
 * The raw path to send upstream. A virtual-hosted S3 request forwarded to a connection's
 * endpoint (an emulator or a private endpoint that only has path-style addressing) becomes
 * path-style: `/key` on `bucket.s3.us-east-1.amazonaws.com` → `/bucket/key`. Without an
 * endpoint (real AWS), and for every other request, the path is unchanged; the raw encoding
 * of the key is kept byte for byte either way.
 */
export function upstreamPath(rawPath: string, host: string, signingName: string, upstreamEndpoint: string): string {
  if (upstreamEndpoint === "") return rawPath;
  const bucket = virtualHostedBucket(host, signingName);
  if (bucket === undefined) return rawPath;
  if (rawPath === "" || rawPath === "/") return `/${bucket}`;
  return `/${bucket}${rawPath.startsWith("/") ? rawPath : `/${rawPath}`}`;
}

/**
 * The upstream host for a virtual-hosted S3 request on real AWS (no connection endpoint): the
 * bucket's own AWS host name, so the original host and path are kept. Undefined when the call
 * should go to the host the upstream resolver picks (an endpoint is configured, or the Host is
 * not a virtual-hosted S3 name under `amazonaws.com`).
 */
export function upstreamVirtualHost(host: string, signingName: string, upstreamEndpoint: string): string | undefined {
  if (upstreamEndpoint !== "") return undefined;
  return virtualHostedBucket(host, signingName) === undefined ? undefined : hostName(host);
}
