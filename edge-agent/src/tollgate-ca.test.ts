import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TollgateCa, TollgateCaError } from "./tollgate-ca.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tollgate-ca-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function files() {
  return { keyFile: join(dir, "edge", "ca-key.pem"), certFile: join(dir, "ca.pem") };
}

describe("TollgateCa", () => {
  it("creates a P-256 CA with a 0600 key and issues leaves for exactly one host", async () => {
    const ca = await TollgateCa.loadOrCreate(files());
    expect(statSync(files().keyFile).mode & 0o777).toBe(0o600);
    const caCert = new X509Certificate(readFileSync(files().certFile));
    expect(caCert.ca).toBe(true);
    expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");

    const leaf = await ca.leafCertificate("bucket.s3.us-east-1.amazonaws.com");
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe("DNS:bucket.s3.us-east-1.amazonaws.com");
    expect(cert.checkHost("bucket.s3.us-east-1.amazonaws.com")).toBe("bucket.s3.us-east-1.amazonaws.com");
    expect(cert.checkHost("other.s3.us-east-1.amazonaws.com")).toBeUndefined();
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);
  });

  it("reloads the same CA from disk and keeps leaves verifiable", async () => {
    const first = await TollgateCa.loadOrCreate(files());
    const second = await TollgateCa.loadOrCreate(files());
    expect(second.certificatePem).toBe(first.certificatePem);
    const leaf = new X509Certificate((await second.leafCertificate("sts.amazonaws.com")).certPem);
    expect(leaf.verify(new X509Certificate(first.certificatePem).publicKey)).toBe(true);
  });

  it("re-issues a missing CA certificate for the existing key", async () => {
    const first = await TollgateCa.loadOrCreate(files());
    rmSync(files().certFile);
    const second = await TollgateCa.loadOrCreate(files());
    expect(second.certificatePem).not.toBe(first.certificatePem);
    const leaf = new X509Certificate((await second.leafCertificate("sts.amazonaws.com")).certPem);
    expect(leaf.verify(new X509Certificate(first.certificatePem).publicKey)).toBe(true);
  });

  it("caches leaves, bounded, least recently used dropped, renewed before expiry", async () => {
    let now = Date.now();
    const ca = await TollgateCa.loadOrCreate({ ...files(), maxCachedLeaves: 2, now: () => now });
    const a1 = await ca.leafCertificate("a.amazonaws.com");
    expect(await ca.leafCertificate("a.amazonaws.com")).toBe(a1);
    await ca.leafCertificate("b.amazonaws.com");
    await ca.leafCertificate("a.amazonaws.com");
    await ca.leafCertificate("c.amazonaws.com");
    expect(ca.cachedLeafCount).toBe(2);
    expect(await ca.leafCertificate("a.amazonaws.com")).toBe(a1);
    now += 6.5 * 86_400_000;
    const a2 = await ca.leafCertificate("a.amazonaws.com");
    expect(a2).not.toBe(a1);
    expect(a2.notAfterMs).toBeGreaterThan(a1.notAfterMs);
  });

  it("issues server certificates for IP addresses and DNS names", async () => {
    const ca = await TollgateCa.loadOrCreate(files());
    const issued = await ca.issueServerCertificate(["localhost", "127.0.0.1"]);
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
  });

  it("rejects bad names and unusable keys with typed errors", async () => {
    const ca = await TollgateCa.loadOrCreate(files());
    await expect(ca.leafCertificate("evil host\r\n")).rejects.toBeInstanceOf(TollgateCaError);
    writeFileSync(join(dir, "bad-key.pem"), "not a key");
    await expect(
      TollgateCa.loadOrCreate({ keyFile: join(dir, "bad-key.pem"), certFile: join(dir, "x.pem") }),
    ).rejects.toMatchObject({ code: "ca-invalid" });
  });
});
