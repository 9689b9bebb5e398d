// tsyringe (inside @peculiar/x509) needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import { createPrivateKey, createPublicKey, randomBytes, webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname } from "node:path";
import * as tls from "node:tls";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

/** ECDSA P-256 with SHA-256 for every key and signature this CA makes. */
const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 24 * 3600 * 1000;
/** Certificates start an hour in the past so a client whose clock is slightly behind accepts them. */
const BACKDATE_MS = 3600 * 1000;

/** Stable codes of {@link TollgateCaError}. */
export type TollgateCaErrorCode = "ca-unreadable" | "ca-invalid" | "invalid-name";

/** Failure to load, create or use the Tollgate CA. */
export class TollgateCaError extends Error {
  override readonly name = "TollgateCaError";
  constructor(
    readonly code: TollgateCaErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options for {@link TollgateCa.loadOrCreate}. */
export interface TollgateCaOptions {
  /** The CA's private key (PKCS#8 PEM), written with mode 0600; e.g. `$TOLLGATE_HOME/edge/ca-key.pem`. */
  keyFile: string;
  /** The CA certificate (PEM) clients trust via `AWS_CA_BUNDLE` / `NODE_EXTRA_CA_CERTS`; e.g. `$TOLLGATE_HOME/ca.pem`. */
  certFile: string;
  /** Validity of a newly created CA certificate, in days. Default 3650. */
  caValidityDays?: number;
  /** Validity of a leaf certificate, in milliseconds. Default 7 days. */
  leafValidityMs?: number;
  /** A cached leaf is replaced when less than this remains, in milliseconds. Default 1 day. */
  leafRenewBeforeMs?: number;
  /** Leaf certificates kept in memory (least recently used are dropped). Default 1000. */
  maxCachedLeaves?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

type ResolvedCaOptions = Required<TollgateCaOptions>;

function resolveTollgateCaOptions(o: TollgateCaOptions): ResolvedCaOptions {
  return {
    caValidityDays: 3650,
    leafValidityMs: 7 * DAY_MS,
    leafRenewBeforeMs: DAY_MS,
    maxCachedLeaves: 1000,
    now: Date.now,
    ...o,
  };
}

/** A certificate issued by the Tollgate CA, with its private key. */
export interface IssuedCertificate {
  /** Leaf certificate, PEM. */
  certPem: string;
  /** Private key of the leaf, PKCS#8 PEM. */
  keyPem: string;
  /** Expiry, ms since the epoch. */
  notAfterMs: number;
}

interface CachedLeaf {
  issued: IssuedCertificate;
  context: tls.SecureContext;
}

const DNS_NAME =
  /^(?=.{1,253}$)(\*\.)?([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function normaliseName(name: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, "");
  if (isIP(n) === 0 && !DNS_NAME.test(n)) {
    throw new TollgateCaError("invalid-name", `not a host name or IP address: ${JSON.stringify(name.slice(0, 80))}`);
  }
  return n;
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  // Positive and without a leading zero byte, as RFC 5280 asks.
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40;
  return bytes.toString("hex");
}

function toPem(der: ArrayBuffer | Buffer, label: string): string {
  return x509.PemConverter.encode(der, label);
}

function writePrivateFile(file: string, content: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

function writePublicFile(file: string, content: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, file);
}

/**
 * The Tollgate certificate authority: a persisted ECDSA P-256 CA that mints short-lived leaf
 * certificates for the AWS host names clients reach through the HTTPS proxy, and server
 * certificates for endpoint mode over TLS.
 *
 * Leaves name exactly one host (no wildcards): a wildcard covers a single label, so it cannot
 * serve S3 buckets whose names contain dots (`my.bucket.s3.us-east-1.amazonaws.com`), and an
 * exact name limits what a leaked leaf is good for. Minting costs one ECDSA signature (leaves
 * share one in-memory key pair, which never leaves the process), and leaves are cached.
 */
export class TollgateCa {
  /** The CA certificate, PEM: what clients must trust. */
  readonly certificatePem: string;
  readonly #o: ResolvedCaOptions;
  readonly #caCert: x509.X509Certificate;
  readonly #caKey: webcrypto.CryptoKey;
  readonly #leafKeys: webcrypto.CryptoKeyPair;
  readonly #leafKeyPem: string;
  /** Insertion-ordered: the first entry is the least recently used. */
  readonly #leaves = new Map<string, Promise<CachedLeaf>>();

  private constructor(
    o: ResolvedCaOptions,
    caCert: x509.X509Certificate,
    caKey: webcrypto.CryptoKey,
    leafKeys: webcrypto.CryptoKeyPair,
    leafKeyPem: string,
  ) {
    this.#o = o;
    this.#caCert = caCert;
    this.#caKey = caKey;
    this.#leafKeys = leafKeys;
    this.#leafKeyPem = leafKeyPem;
    this.certificatePem = caCert.toString("pem");
  }

  /**
   * Loads the CA from `keyFile`/`certFile`, creating the key (0600) and a self-signed
   * certificate if missing. A certificate that is missing, expiring within a leaf lifetime or
   * not matching the key is re-issued for the same key (leaves stay verifiable).
   */
  static async loadOrCreate(options: TollgateCaOptions): Promise<TollgateCa> {
    const o = resolveTollgateCaOptions(options);
    const subtle = webcrypto.subtle;
    let keyPem: string;
    if (existsSync(o.keyFile)) {
      try {
        keyPem = readFileSync(o.keyFile, "utf8");
      } catch (cause) {
        throw new TollgateCaError("ca-unreadable", `cannot read the CA key ${o.keyFile}`, { cause });
      }
    } else {
      const pair = (await subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
      keyPem = toPem(await subtle.exportKey("pkcs8", pair.privateKey), "PRIVATE KEY");
      writePrivateFile(o.keyFile, keyPem);
    }
    let privateKey: webcrypto.CryptoKey;
    let publicKey: webcrypto.CryptoKey;
    let spki: Buffer;
    try {
      const nodeKey = createPrivateKey(keyPem);
      if (nodeKey.asymmetricKeyType !== "ec" || nodeKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
        throw new Error("not an ECDSA P-256 key");
      }
      const pkcs8 = nodeKey.export({ type: "pkcs8", format: "der" });
      spki = createPublicKey(nodeKey).export({ type: "spki", format: "der" });
      privateKey = await subtle.importKey("pkcs8", pkcs8, KEY_ALGORITHM, false, ["sign"]);
      publicKey = await subtle.importKey("spki", spki, KEY_ALGORITHM, true, ["verify"]);
    } catch (cause) {
      throw new TollgateCaError("ca-invalid", `the CA key ${o.keyFile} is not a usable ECDSA P-256 PKCS#8 key`, {
        cause,
      });
    }

    let caCert: x509.X509Certificate | undefined;
    if (existsSync(o.certFile)) {
      try {
        const existing = new x509.X509Certificate(readFileSync(o.certFile, "utf8"));
        const matches = Buffer.from(existing.publicKey.rawData).equals(spki);
        const fresh = existing.notAfter.getTime() - o.now() > o.leafValidityMs;
        if (matches && fresh) caCert = existing;
      } catch {
        caCert = undefined;
      }
    }
    if (caCert === undefined) {
      const nowMs = o.now();
      caCert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: "CN=Tollgate Local CA, O=Tollgate",
        issuer: "CN=Tollgate Local CA, O=Tollgate",
        notBefore: new Date(nowMs - BACKDATE_MS),
        notAfter: new Date(nowMs + o.caValidityDays * DAY_MS),
        signingAlgorithm: SIGNING_ALGORITHM,
        publicKey: publicKey,
        signingKey: privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(publicKey),
        ],
      });
      writePublicFile(o.certFile, caCert.toString("pem"));
    }

    const leafKeys = (await subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const leafKeyPem = toPem(await subtle.exportKey("pkcs8", leafKeys.privateKey), "PRIVATE KEY");
    return new TollgateCa(o, caCert, privateKey, leafKeys, leafKeyPem);
  }

  /** Expiry of the CA certificate, ms since the epoch. */
  get notAfterMs(): number {
    return this.#caCert.notAfter.getTime();
  }

  /**
   * Issues a server certificate for the given DNS names and IP addresses (subject alternative
   * names), e.g. `["localhost", "127.0.0.1"]` for endpoint mode over TLS. Not cached.
   */
  async issueServerCertificate(names: string[], validityMs = this.#o.leafValidityMs): Promise<IssuedCertificate> {
    if (names.length === 0) throw new TollgateCaError("invalid-name", "a certificate needs at least one name");
    const normalised = names.map(normaliseName);
    const nowMs = this.#o.now();
    const notAfterMs = Math.min(nowMs + validityMs, this.notAfterMs);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${normalised[0]}`,
      issuer: this.#caCert.subject,
      notBefore: new Date(nowMs - BACKDATE_MS),
      notAfter: new Date(notAfterMs),
      signingAlgorithm: SIGNING_ALGORITHM,
      publicKey: this.#leafKeys.publicKey,
      signingKey: this.#caKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(
          normalised.map((n) => ({ type: isIP(n) !== 0 ? ("ip" as const) : ("dns" as const), value: n })),
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(this.#leafKeys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.#caCert),
      ],
    });
    return { certPem: cert.toString("pem"), keyPem: this.#leafKeyPem, notAfterMs };
  }

  /** The (cached) leaf certificate for exactly `hostname`. */
  async leafCertificate(hostname: string): Promise<IssuedCertificate> {
    return (await this.#leaf(hostname)).issued;
  }

  /** A TLS secure context serving the (cached) leaf certificate for exactly `hostname`. */
  async secureContext(hostname: string): Promise<tls.SecureContext> {
    return (await this.#leaf(hostname)).context;
  }

  /** Leaf certificates currently cached. */
  get cachedLeafCount(): number {
    return this.#leaves.size;
  }

  async #leaf(hostname: string): Promise<CachedLeaf> {
    const name = normaliseName(hostname);
    const cached = this.#leaves.get(name);
    if (cached !== undefined) {
      const leaf = await cached.catch(() => undefined);
      if (leaf !== undefined && leaf.issued.notAfterMs - this.#o.now() > this.#o.leafRenewBeforeMs) {
        // Move to the most recently used end.
        this.#leaves.delete(name);
        this.#leaves.set(name, cached);
        return leaf;
      }
      if (this.#leaves.get(name) === cached) this.#leaves.delete(name);
    }
    const minting = this.issueServerCertificate([name]).then((issued) => ({
      issued,
      context: tls.createSecureContext({ key: issued.keyPem, cert: issued.certPem }),
    }));
    this.#leaves.set(name, minting);
    minting.catch(() => {
      if (this.#leaves.get(name) === minting) this.#leaves.delete(name);
    });
    while (this.#leaves.size > this.#o.maxCachedLeaves) {
      const oldest = this.#leaves.keys().next().value as string;
      this.#leaves.delete(oldest);
    }
    return await minting;
  }
}
