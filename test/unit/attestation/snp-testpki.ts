import * as x509 from '@peculiar/x509';
import { KeyObject, createHash, randomBytes, sign, webcrypto } from 'node:crypto';
import {
  encodeSnpReport,
  signedPart,
  withSnpSignature,
  type SnpReportFields,
} from '../../../attestation/index.js';
import type { SnpProduct, SnpTrustAnchor } from '../../../attestation/snp/index.js';

/**
 * A test AMD PKI made by the tests (never AMD's keys): per product an ARK
 * (self-signed) and ASK / ASVK, all RSA-PSS SHA-384 (salt 48) like AMD's, but
 * RSA-2048 instead of RSA-4096 to keep key generation fast; VCEK/VLEK leaves are
 * ECDSA P-384 with the AMD extensions (1.3.6.1.4.1.3704.1.*) encoded as AMD does
 * (INTEGER SPLs, IA5String product name / CSP id, raw hwID bytes). Names are
 * short ("CN=ARK-Milan", "CN=SEV-Milan", …), not AMD's full DNs. Reports are
 * built with encodeSnpReport and signed (ECDSA P-384/SHA-384, P1363 → r/s
 * little-endian) with the leaf's private key.
 */

x509.cryptoProvider.set(webcrypto);
const subtle = webcrypto.subtle;

const RSA_PSS_GEN = { name: 'RSA-PSS', hash: 'SHA-384', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
/** @peculiar/x509 takes the RSASSA-PSS parameters' hash from `hash` (WebCrypto's RsaPssParams has none: the key carries it). */
const RSA_PSS_SIGN = { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 };
const EC_GEN = { name: 'ECDSA', namedCurve: 'P-384' };

type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const CA_NOT_BEFORE = new Date('2020-01-01T00:00:00Z');
export const CA_NOT_AFTER = new Date('2045-01-01T00:00:00Z');
export const LEAF_NOT_BEFORE = new Date('2024-01-01T00:00:00Z');
export const LEAF_NOT_AFTER = new Date('2031-01-01T00:00:00Z');

export interface TestCa {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly pem: string;
  readonly der: Uint8Array;
}

export interface TestProductPki {
  readonly product: SnpProduct;
  readonly ark: TestCa;
  readonly ask: TestCa;
  readonly asvk: TestCa;
  /** ARK + ASK + ASVK. */
  readonly anchor: SnpTrustAnchor;
  /** SHA-256 hex of the ARK's SPKI DER (the expected rootKeyId). */
  readonly rootKeyId: string;
}

export interface LeafOptions {
  readonly product?: string;
  readonly bootloader?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly microcode?: number;
  readonly fmc?: number;
  readonly hwid?: Uint8Array;
  readonly cspId?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Reuse a key pair (e.g. same VCEK key, other extensions). */
  readonly keys?: CryptoKeyPair;
  /** Extra extensions (e.g. one that embeds PEM text). */
  readonly extraExtensions?: x509.Extension[];
  readonly subject?: string;
}

export interface TestLeaf {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly keys: CryptoKeyPair;
  readonly privateKey: KeyObject;
}

const serial = (): string => '01' + randomBytes(8).toString('hex');

async function rsaKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(RSA_PSS_GEN, true, ['sign', 'verify']);
}

function ca(cert: x509.X509Certificate, keys: CryptoKeyPair): TestCa {
  return { cert, keys, pem: cert.toString('pem'), der: new Uint8Array(cert.rawData) };
}

export async function makeArk(name: string, keys?: CryptoKeyPair): Promise<TestCa> {
  const k = keys ?? (await rsaKeys());
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: CA_NOT_BEFORE,
    notAfter: CA_NOT_AFTER,
    keys: k,
    signingAlgorithm: RSA_PSS_SIGN,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return ca(cert, k);
}

export async function makeIntermediate(
  name: string,
  issuer: TestCa,
  opts: { keys?: CryptoKeyPair; notBefore?: Date; notAfter?: Date } = {},
): Promise<TestCa> {
  const k = opts.keys ?? (await rsaKeys());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: name,
    issuer: issuer.cert.subject,
    notBefore: opts.notBefore ?? CA_NOT_BEFORE,
    notAfter: opts.notAfter ?? CA_NOT_AFTER,
    publicKey: k.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: RSA_PSS_SIGN,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  return ca(cert, k);
}

export async function makeProductPki(product: SnpProduct): Promise<TestProductPki> {
  const ark = await makeArk(`CN=ARK-${product}`);
  const [ask, asvk] = await Promise.all([
    makeIntermediate(`CN=SEV-${product}`, ark),
    makeIntermediate(`CN=SEV-VLEK-${product}`, ark),
  ]);
  const spki = new Uint8Array(ark.cert.publicKey.rawData);
  return {
    product,
    ark,
    ask,
    asvk,
    anchor: { product, ark: ark.pem, ask: ask.pem, asvk: asvk.pem },
    rootKeyId: createHash('sha256').update(spki).digest('hex'),
  };
}

// DER encoders for the AMD extension values
export function derInteger(n: number): Uint8Array {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return new Uint8Array([0x02, bytes.length, ...bytes]);
}

export function derIa5(s: string): Uint8Array {
  const b = Buffer.from(s, 'latin1');
  return new Uint8Array([0x16, b.length, ...b]);
}

const AMD = '1.3.6.1.4.1.3704.1.';

/** A standalone ArrayBuffer copy (what @peculiar/x509 takes as BufferSource). */
export const toArrayBuffer = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

export async function makeLeaf(issuer: TestCa, opts: LeafOptions = {}): Promise<TestLeaf> {
  const keys = opts.keys ?? (await subtle.generateKey(EC_GEN, true, ['sign', 'verify']));
  const ext = (arc: string, value: Uint8Array): x509.Extension => new x509.Extension(AMD + arc, false, toArrayBuffer(value));
  const exts: x509.Extension[] = [ext('1', derInteger(1))];
  if (opts.product !== undefined) exts.push(ext('2', derIa5(opts.product)));
  const spl: Array<[string, number | undefined]> = [
    ['3.1', opts.bootloader],
    ['3.2', opts.tee],
    ['3.3', opts.snp],
    ['3.8', opts.microcode],
    ['3.9', opts.fmc],
  ];
  for (const [arc, v] of spl) if (v !== undefined) exts.push(ext(arc, derInteger(v)));
  if (opts.hwid !== undefined) exts.push(ext('4', opts.hwid));
  if (opts.cspId !== undefined) exts.push(ext('5', derIa5(opts.cspId)));
  exts.push(...(opts.extraExtensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: opts.subject ?? 'CN=SEV-VCEK',
    issuer: issuer.cert.subject,
    notBefore: opts.notBefore ?? LEAF_NOT_BEFORE,
    notAfter: opts.notAfter ?? LEAF_NOT_AFTER,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: RSA_PSS_SIGN,
    extensions: exts,
  });
  return {
    der: new Uint8Array(cert.rawData),
    pem: cert.toString('pem'),
    keys,
    privateKey: KeyObject.from(keys.privateKey),
  };
}

/** Builds a report with encodeSnpReport and signs it with the leaf key. */
export function signedReport(fields: SnpReportFields, key: KeyObject): Uint8Array {
  const unsigned = encodeSnpReport(fields);
  const sig = new Uint8Array(sign('sha384', signedPart(unsigned), { key, dsaEncoding: 'ieee-p1363' }));
  return withSnpSignature(unsigned, sig);
}

/** Re-signs an existing (possibly modified) 1184-byte report. */
export function resign(report: Uint8Array, key: KeyObject): Uint8Array {
  const sig = new Uint8Array(sign('sha384', signedPart(report), { key, dsaEncoding: 'ieee-p1363' }));
  return withSnpSignature(report, sig);
}

/**
 * Azure HCL report around `report` (FORMATS.md 1.5): "HCLA" header, report at
 * 0x20, IGVM request data at 0x4C0, runtime data at 0x4D4, zero padding to `total`.
 */
export function hclWrap(
  report: Uint8Array,
  runtime: Uint8Array,
  opts: { version?: number; reportType?: number; hashType?: number; total?: number } = {},
): Uint8Array {
  const total = Math.max(opts.total ?? 2600, 0x4d4 + runtime.length);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set(Buffer.from('HCLA', 'latin1'), 0);
  v.setUint32(4, opts.version ?? 2, true);
  v.setUint32(8, 0x20 + 0x4a0 + 20 + runtime.length, true);
  v.setUint32(12, 2, true);
  out.set(report, 0x20);
  v.setUint32(0x4c0, 20 + runtime.length, true);
  v.setUint32(0x4c4, 1, true);
  v.setUint32(0x4c8, opts.reportType ?? 2, true);
  v.setUint32(0x4cc, opts.hashType ?? 1, true);
  v.setUint32(0x4d0, runtime.length, true);
  out.set(runtime, 0x4d4);
  return out;
}

export const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
