import { X509Certificate, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestationError, guarded, type AttestationErrorCode } from '../errors.js';
import { bytesEqual, copyBytes, isBytes, sha256Hex } from '../internal/bytes.js';

/**
 * X.509 handling for the AMD SEV-SNP chain (ARK → ASK/ASVK → VCEK/VLEK).
 *
 * node:crypto verifies signatures (RSASSA-PSS included) but exposes neither
 * extensions nor exact validity dates, so certificates are ALSO read by the
 * strict DER walker below (definite minimal lengths, exact nesting, no trailing
 * bytes). node:crypto only ever sees a certificate as a PEM string built here
 * from the DER bytes, and its parse must reproduce those bytes exactly:
 * `new X509Certificate(derBuffer)` tries PEM first and can pick up a PEM
 * certificate embedded INSIDE the DER (FORMATS.md pitfall 3).
 *
 * Nothing here throws anything but AttestationError; the caller chooses the code
 * used for malformed certificates (EVIDENCE_MALFORMED for endorsements,
 * INVALID_ARGUMENT for trust anchors).
 */

export const SNP_PRODUCTS = ['Milan', 'Genoa', 'Turin'] as const;
export type SnpProduct = (typeof SNP_PRODUCTS)[number];

export function isSnpProduct(value: unknown): value is SnpProduct {
  return typeof value === 'string' && (SNP_PRODUCTS as readonly string[]).includes(value);
}

/**
 * One AMD root of trust for one product. `ark` is pinned by its public key
 * (SubjectPublicKeyInfo DER); it must be self-signed. `ask` (issuer of VCEKs)
 * and `asvk` (issuer of VLEKs) are optional and must be signed by the ARK; when
 * absent, the endorsements must carry them. Certificates are PEM text or DER
 * (or PEM) bytes, one certificate each.
 */
export interface SnpTrustAnchor {
  readonly product: SnpProduct;
  readonly ark: string | Uint8Array;
  readonly ask?: string | Uint8Array;
  readonly asvk?: string | Uint8Array;
}

/** OID arcs of the AMD VCEK/VLEK certificate extensions (1.3.6.1.4.1.3704.1.*). */
export const AMD_OID = Object.freeze({
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwid: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
});

/** Upper bounds: a certificate, and everything handed over as endorsements. */
export const MAX_CERT_BYTES = 64 * 1024;
export const MAX_ENDORSEMENT_BYTES = 256 * 1024;
export const MAX_ENDORSEMENT_CERTS = 16;

export interface CertExtension {
  readonly critical: boolean;
  /** extnValue contents (the bytes inside the OCTET STRING). */
  readonly value: Uint8Array;
}

export interface ParsedCertificate {
  /** Exact DER bytes. */
  readonly der: Uint8Array;
  /** SHA-256 hex of der. */
  readonly digest: string;
  /** node:crypto view of the same bytes (signature verification, public key). */
  readonly x509: X509Certificate;
  readonly publicKey: KeyObject;
  /** DER of the issuer / subject Name (compared byte-wise for issuer matching). */
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  /** Subject commonName (first CN attribute), if any. */
  readonly subjectCn?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER of the SubjectPublicKeyInfo exactly as in the certificate: the pin identity. */
  readonly spkiDer: Uint8Array;
  readonly extensions: ReadonlyMap<string, CertExtension>;
}

// ----------------------------------------------------------------------------------------------
// strict DER walker

class DerError extends Error {}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

function derFail(message: string): never {
  throw new DerError(message);
}

function readTlv(buf: Uint8Array, off: number, limit: number): Tlv {
  if (off + 2 > limit) derFail('truncated TLV');
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) derFail('high tag number form');
  let len = buf[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) derFail('indefinite length');
    if (n > 3) derFail('length too large');
    if (p + n > limit) derFail('truncated length');
    if (buf[p] === 0) derFail('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    if (len < 0x80) derFail('non-minimal length');
    p += n;
  }
  if (p + len > limit) derFail('truncated value');
  return { tag, start: off, valueStart: p, end: p + len };
}

function children(buf: Uint8Array, tlv: Tlv): Tlv[] {
  if ((tlv.tag & 0x20) === 0) derFail('primitive where constructed expected');
  const out: Tlv[] = [];
  let p = tlv.valueStart;
  while (p < tlv.end) {
    const c = readTlv(buf, p, tlv.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv === undefined || tlv.tag !== tag) derFail(`${what}: expected tag 0x${tag.toString(16)}`);
  return tlv;
}

function value(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.valueStart, tlv.end);
}

/** A whole buffer that is exactly one DER SEQUENCE. */
function isSingleDerSequence(buf: Uint8Array): boolean {
  try {
    if (buf.length < 2 || buf[0] !== 0x30) return false;
    return readTlv(buf, 0, buf.length).end === buf.length;
  } catch {
    return false;
  }
}

function oidToString(bytes: Uint8Array): string {
  if (bytes.length === 0 || bytes.length > 64) derFail('bad OID length');
  if ((bytes[bytes.length - 1]! & 0x80) !== 0) derFail('truncated OID');
  const arcs: number[] = [];
  let v = 0;
  let startOfArc = true;
  for (const b of bytes) {
    if (startOfArc && b === 0x80) derFail('non-minimal OID arc');
    if (v > 0x1fffffff) derFail('OID arc too large');
    v = v * 128 + (b & 0x7f);
    startOfArc = (b & 0x80) === 0;
    if (startOfArc) {
      arcs.push(v);
      v = 0;
    }
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

const TIME_RE_UTC = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const TIME_RE_GEN = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

function parseTime(buf: Uint8Array, tlv: Tlv): Date {
  const text = Buffer.from(value(buf, tlv)).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === 0x17) {
    m = TIME_RE_UTC.exec(text);
    if (m === null) derFail('bad UTCTime');
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (tlv.tag === 0x18) {
    m = TIME_RE_GEN.exec(text);
    if (m === null) derFail('bad GeneralizedTime');
    year = Number(m[1]);
  } else {
    derFail('validity time has a wrong tag');
  }
  const [mo, d, h, mi, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const t = Date.UTC(year, mo - 1, d, h, mi, s);
  const date = new Date(t);
  if (
    Number.isNaN(t) ||
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== s
  ) {
    derFail('validity time out of range');
  }
  return date;
}

const STRING_TAGS = new Set([0x0c, 0x13, 0x16, 0x14, 0x1e]);

function firstCommonName(buf: Uint8Array, name: Tlv): string | undefined {
  for (const rdn of children(buf, name)) {
    expectTag(rdn, 0x31, 'RelativeDistinguishedName');
    for (const atv of children(buf, rdn)) {
      expectTag(atv, 0x30, 'AttributeTypeAndValue');
      const [type, val] = children(buf, atv);
      if (oidToString(value(buf, expectTag(type, 0x06, 'attribute type'))) !== '2.5.4.3') continue;
      if (val === undefined || !STRING_TAGS.has(val.tag)) derFail('commonName is not a string');
      if (val.tag === 0x1e) return undefined; // BMPString: never used by AMD
      return Buffer.from(value(buf, val)).toString(val.tag === 0x0c ? 'utf8' : 'latin1');
    }
  }
  return undefined;
}

interface DerCertificate {
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  readonly subjectCn?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spkiDer: Uint8Array;
  readonly extensions: Map<string, CertExtension>;
}

function walkCertificate(der: Uint8Array): DerCertificate {
  const top = expectTag(readTlv(der, 0, der.length), 0x30, 'Certificate');
  if (top.end !== der.length) derFail('trailing bytes after the certificate');
  const parts = children(der, top);
  if (parts.length !== 3) derFail('Certificate must have 3 elements');
  const tbs = expectTag(parts[0], 0x30, 'TBSCertificate');
  expectTag(parts[1], 0x30, 'signatureAlgorithm');
  expectTag(parts[2], 0x03, 'signatureValue');
  const k = children(der, tbs);
  let i = 0;
  if (k[0]?.tag === 0xa0) i++; // [0] EXPLICIT version
  expectTag(k[i++], 0x02, 'serialNumber');
  expectTag(k[i++], 0x30, 'signature');
  const issuer = expectTag(k[i++], 0x30, 'issuer');
  const validity = expectTag(k[i++], 0x30, 'validity');
  const subject = expectTag(k[i++], 0x30, 'subject');
  const spki = expectTag(k[i++], 0x30, 'subjectPublicKeyInfo');
  if (k[i]?.tag === 0x81 || k[i]?.tag === 0xa1) i++; // issuerUniqueID
  if (k[i]?.tag === 0x82 || k[i]?.tag === 0xa2) i++; // subjectUniqueID
  const extensions = new Map<string, CertExtension>();
  if (k[i]?.tag === 0xa3) {
    const wrapper = children(der, k[i++]!);
    if (wrapper.length !== 1) derFail('extensions wrapper');
    for (const ext of children(der, expectTag(wrapper[0], 0x30, 'Extensions'))) {
      const e = children(der, expectTag(ext, 0x30, 'Extension'));
      const oid = oidToString(value(der, expectTag(e[0], 0x06, 'extnID')));
      let j = 1;
      let critical = false;
      if (e[j]?.tag === 0x01) {
        const b = value(der, e[j]!);
        if (b.length !== 1 || (b[0] !== 0x00 && b[0] !== 0xff)) derFail('bad BOOLEAN');
        critical = b[0] === 0xff;
        j++;
      }
      const v = expectTag(e[j++], 0x04, 'extnValue');
      if (j !== e.length) derFail('Extension has extra elements');
      if (extensions.has(oid)) derFail(`duplicate extension ${oid}`);
      extensions.set(oid, { critical, value: copyBytes(value(der, v)) });
    }
  }
  if (i !== k.length) derFail('TBSCertificate has unexpected elements');
  const times = children(der, validity);
  if (times.length !== 2) derFail('validity must have 2 times');
  const cn = firstCommonName(der, subject);
  return {
    issuerDer: copyBytes(der, issuer.start, issuer.end),
    subjectDer: copyBytes(der, subject.start, subject.end),
    ...(cn !== undefined ? { subjectCn: cn } : {}),
    notBefore: parseTime(der, times[0]!),
    notAfter: parseTime(der, times[1]!),
    spkiDer: copyBytes(der, spki.start, spki.end),
    extensions,
  };
}

// ----------------------------------------------------------------------------------------------
// certificates

function toPem(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}

/**
 * Parses one DER certificate (strict). Malformed → AttestationError(code).
 * `what` names the certificate in messages.
 */
export function parseCertificateDer(der: Uint8Array, code: AttestationErrorCode, what: string): ParsedCertificate {
  if (!isBytes(der) || der.length === 0 || der.length > MAX_CERT_BYTES) {
    throw new AttestationError(code, `${what}: not a certificate of acceptable size`);
  }
  const bytes = copyBytes(der);
  const digest = sha256Hex(bytes);
  const cached = parsedCache.get(digest);
  if (cached !== undefined) return cached;
  let walked: DerCertificate;
  try {
    walked = walkCertificate(bytes);
  } catch (err) {
    if (err instanceof DerError) throw new AttestationError(code, `${what}: malformed certificate DER (${err.message})`);
    throw err;
  }
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    // Always a PEM string built from exactly these bytes (never the DER buffer: pitfall 3).
    x509 = new X509Certificate(toPem(bytes));
    publicKey = x509.publicKey;
  } catch (err) {
    throw new AttestationError(code, `${what}: certificate cannot be parsed`, undefined, { cause: err });
  }
  if (!bytesEqual(new Uint8Array(x509.raw), bytes)) {
    throw new AttestationError(code, `${what}: certificate parser returned a different certificate`);
  }
  const parsed: ParsedCertificate = Object.freeze({ der: bytes, digest, x509, publicKey, ...walked });
  remember(parsedCache, digest, parsed);
  return parsed;
}

// Memoisation (bounded, content-addressed by SHA-256 of the DER): parsing and
// RSA signature checks of the same certificates repeat for every report of a
// chip; caching them never changes an outcome.
const CACHE_LIMIT = 512;
const parsedCache = new Map<string, ParsedCertificate>();
const issuedCache = new Map<string, boolean>();

function remember<V>(cache: Map<string, V>, key: string, v: V): void {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, v);
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;
const BASE64_BODY_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Certificates in one item: a single DER certificate, or text holding one or
 * more PEM "CERTIFICATE" blocks (other text between blocks is ignored).
 */
export function certificatesFromItem(item: Uint8Array | string, code: AttestationErrorCode, what: string): ParsedCertificate[] {
  if (typeof item !== 'string' && !isBytes(item)) throw new AttestationError(code, `${what}: must be bytes or PEM text`);
  if (item.length === 0) throw new AttestationError(code, `${what}: empty`);
  if (item.length > MAX_ENDORSEMENT_BYTES) throw new AttestationError(code, `${what}: larger than ${MAX_ENDORSEMENT_BYTES} bytes`);
  if (isBytes(item) && isSingleDerSequence(item)) return [parseCertificateDer(item, code, what)];
  const text = typeof item === 'string' ? item : Buffer.from(item).toString('latin1');
  const out: ParsedCertificate[] = [];
  for (const m of text.matchAll(PEM_CERT_RE)) {
    const body = m[1]!.replace(/\s+/g, '');
    const der = BASE64_BODY_RE.test(body) && body.length % 4 === 0 ? Buffer.from(body, 'base64') : undefined;
    if (der === undefined || der.length === 0 || der.toString('base64') !== body) {
      throw new AttestationError(code, `${what}: PEM certificate #${out.length + 1} is not valid base64`);
    }
    if (out.length >= MAX_ENDORSEMENT_CERTS) throw new AttestationError(code, `${what}: more than ${MAX_ENDORSEMENT_CERTS} certificates`);
    out.push(parseCertificateDer(new Uint8Array(der), code, `${what} (PEM certificate #${out.length + 1})`));
  }
  if (out.length === 0) {
    throw new AttestationError(code, `${what}: neither a DER certificate nor PEM text with a certificate`);
  }
  if (text.split('-----BEGIN CERTIFICATE-----').length - 1 !== out.length) {
    throw new AttestationError(code, `${what}: a PEM certificate block is malformed`);
  }
  return out;
}

/**
 * Public parse of certificate bytes (DER, or PEM text with one or more
 * certificates), e.g. endorsements read from files: EVIDENCE_MALFORMED for
 * anything else. Signatures are not checked here.
 */
export function parseAmdCertificates(item: Uint8Array | string): ParsedCertificate[] {
  return guarded('parseAmdCertificates', () => certificatesFromItem(item, 'EVIDENCE_MALFORMED', 'certificate'));
}

/** cert's signature verifies under `key` (false for any failure, never throws). */
export function signedBy(cert: ParsedCertificate, key: KeyObject): boolean {
  try {
    return cert.x509.verify(key);
  } catch {
    return false;
  }
}

/** Issued by: names match byte-wise AND the signature verifies under the issuer's key. */
export function issuedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  if (!bytesEqual(cert.issuerDer, issuer.subjectDer)) return false;
  const key = `${cert.digest}|${issuer.digest}`;
  let ok = issuedCache.get(key);
  if (ok === undefined) {
    ok = signedBy(cert, issuer.publicKey);
    remember(issuedCache, key, ok);
  }
  return ok;
}

export function isSelfIssued(cert: ParsedCertificate): boolean {
  return bytesEqual(cert.issuerDer, cert.subjectDer);
}

/** ECDSA P-384 / SHA-384 verification of an IEEE-P1363 signature (high-S accepted). Never throws. */
export function verifyP384(key: KeyObject, message: Uint8Array, p1363: Uint8Array): boolean {
  try {
    return cryptoVerify('sha384', message, { key, dsaEncoding: 'ieee-p1363' }, p1363);
  } catch {
    return false;
  }
}

export function isP384Key(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
}

// ----------------------------------------------------------------------------------------------
// AMD VCEK / VLEK extensions

export interface AmdCertExtensions {
  readonly structVersion?: number;
  /** Raw product name, e.g. "Milan-B0", "Genoa", "Turin". */
  readonly productName?: string;
  /** The product the name designates (the part before "-"), when it is one of SNP_PRODUCTS. */
  readonly product?: SnpProduct;
  readonly bootloader?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly microcode?: number;
  /** Turin and later. */
  readonly fmc?: number;
  /** Reserved SPLs 1.3.6.1.4.1.3704.1.3.4 .. .7 (Milan/Genoa TCB bytes 2..5). */
  readonly spl4?: number;
  readonly spl5?: number;
  readonly spl6?: number;
  readonly spl7?: number;
  /** VCEK: the chip id (64 bytes; 8 bytes on Turin). */
  readonly hwid?: Uint8Array;
  /** VLEK: the cloud service provider, e.g. "CN=cc-us-east-2.amazonaws.com". */
  readonly cspId?: string;
}

function extInteger(v: Uint8Array, what: string): number {
  if (v.length < 3 || v[0] !== 0x02 || v[1] !== v.length - 2) derFail(`${what}: not a DER INTEGER`);
  const body = v.subarray(2);
  if (body[0]! & 0x80) derFail(`${what}: negative`);
  if (body.length > 1 && body[0] === 0 && (body[1]! & 0x80) === 0) derFail(`${what}: non-minimal INTEGER`);
  if (body.length > 5 || (body.length === 5 && body[0] !== 0)) derFail(`${what}: INTEGER too large`);
  let n = 0;
  for (const b of body) n = n * 256 + b;
  return n;
}

function extIa5(v: Uint8Array, what: string): string {
  let tlv: Tlv;
  try {
    tlv = readTlv(v, 0, v.length);
  } catch {
    derFail(`${what}: not a DER string`);
  }
  if (tlv.tag !== 0x16 || tlv.end !== v.length) derFail(`${what}: not an IA5String`);
  const body = v.subarray(tlv.valueStart);
  for (const b of body) if (b > 0x7e || b < 0x20) derFail(`${what}: non-printable character`);
  return Buffer.from(body).toString('latin1');
}

function extHwid(v: Uint8Array): Uint8Array {
  // The value is the raw id (no inner OCTET STRING); tolerate a wrapped form by LENGTH only
  // (a raw id may itself start with 0x04: FORMATS.md pitfall 11).
  if (v.length === 64 || v.length === 8) return copyBytes(v);
  if ((v.length === 66 && v[0] === 0x04 && v[1] === 64) || (v.length === 10 && v[0] === 0x04 && v[1] === 8)) {
    return copyBytes(v, 2);
  }
  derFail(`hwID has ${v.length} bytes (expected 64, or 8 on Turin)`);
}

/**
 * Decodes the AMD extensions of a VCEK/VLEK certificate. A malformed AMD
 * extension → AttestationError('CHAIN_INVALID') (the certificate is not usable).
 * Unknown 1.3.6.1.4.1.3704.* extensions are ignored.
 */
export function amdExtensions(cert: ParsedCertificate): AmdCertExtensions {
  return guarded('amdExtensions', () => decodeAmdExtensions(cert));
}

function decodeAmdExtensions(cert: ParsedCertificate): AmdCertExtensions {
  if (cert === null || typeof cert !== 'object' || !(cert.extensions instanceof Map)) {
    throw new AttestationError('INVALID_ARGUMENT', 'amdExtensions: not a parsed certificate');
  }
  const get = (oid: string): Uint8Array | undefined => cert.extensions.get(oid)?.value;
  try {
    const out: Record<string, unknown> = {};
    const int = (key: string, oid: string): void => {
      const v = get(oid);
      if (v !== undefined) out[key] = extInteger(v, key);
    };
    int('structVersion', AMD_OID.structVersion);
    const name = get(AMD_OID.productName);
    if (name !== undefined) {
      const productName = extIa5(name, 'productName');
      out['productName'] = productName;
      const base = productName.split('-')[0];
      if (isSnpProduct(base)) out['product'] = base;
    }
    int('bootloader', AMD_OID.blSpl);
    int('tee', AMD_OID.teeSpl);
    int('snp', AMD_OID.snpSpl);
    int('microcode', AMD_OID.ucodeSpl);
    int('fmc', AMD_OID.fmcSpl);
    int('spl4', AMD_OID.spl4);
    int('spl5', AMD_OID.spl5);
    int('spl6', AMD_OID.spl6);
    int('spl7', AMD_OID.spl7);
    const hwid = get(AMD_OID.hwid);
    if (hwid !== undefined) out['hwid'] = extHwid(hwid);
    const csp = get(AMD_OID.cspId);
    if (csp !== undefined) out['cspId'] = extIa5(csp, 'cspId');
    return out as AmdCertExtensions;
  } catch (err) {
    if (err instanceof DerError) {
      throw new AttestationError('CHAIN_INVALID', `AMD certificate extension malformed: ${err.message}`, {
        certificate: cert.digest,
      });
    }
    throw err;
  }
}
