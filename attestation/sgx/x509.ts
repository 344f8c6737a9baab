import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestationError, type AttestationErrorCode } from '../errors.js';
import { bytesEqual, fromBase64Strict, sha256Hex } from '../internal/bytes.js';
import { DerReader, TAG, type Tlv } from './der.js';

/**
 * Just enough X.509 for the Intel PCK / TCB-signing chains, over DER parsed by
 * DerReader (node:crypto exposes no extensions and no CRLs). Signatures are
 * checked with node:crypto over the exact TBS bytes, so nothing is re-encoded.
 *
 * Certificates are never constructed with `new X509Certificate(der)`: Node tries
 * PEM first and can pick up PEM text embedded inside a DER certificate.
 */

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const SIG_HASH: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384', // ecdsa-with-SHA384
};
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_KEY_USAGE = '2.5.29.15';
const OID_COMMON_NAME = '2.5.4.3';

/** Critical certificate extensions this verifier understands (any other critical one is rejected). */
const KNOWN_CRITICAL = new Set([OID_BASIC_CONSTRAINTS, OID_KEY_USAGE]);

export const KEY_USAGE = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

export interface CertExtension {
  readonly critical: boolean;
  /** extnValue content (the bytes inside the OCTET STRING). */
  readonly value: Uint8Array;
}

export interface Cert {
  readonly der: Uint8Array;
  /** SHA-256 hex of der. */
  readonly digest: string;
  readonly tbs: Uint8Array;
  readonly sigHash: string;
  readonly signature: Uint8Array;
  /** Serial number magnitude, lowercase hex without leading zero bytes. */
  readonly serial: string;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly subjectCn: string;
  readonly issuerCn: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Uint8Array;
  readonly spkiId: string;
  readonly key: KeyObject;
  readonly extensions: ReadonlyMap<string, CertExtension>;
  readonly isCa: boolean;
  /** Key usage bits of the first KeyUsage byte (KEY_USAGE), undefined when the extension is absent. */
  readonly keyUsage?: number;
}

function algorithmHash(r: DerReader, alg: Tlv): string {
  const parts = r.children(r.expectTag(alg, TAG.SEQUENCE));
  if (parts[0] === undefined) throw r.fail('empty AlgorithmIdentifier');
  const oid = r.oid(parts[0]);
  const hash = SIG_HASH[oid];
  if (hash === undefined) {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `${r.what}: signature algorithm ${oid} is not ECDSA with SHA-256/384`);
  }
  // ECDSA AlgorithmIdentifiers have absent parameters.
  if (parts.length !== 1) throw r.fail('ECDSA AlgorithmIdentifier with parameters');
  return hash;
}

function commonName(r: DerReader, name: Tlv): string {
  for (const rdn of r.children(r.expectTag(name, TAG.SEQUENCE))) {
    for (const atv of r.children(r.expectTag(rdn, TAG.SET))) {
      const [type, value] = r.children(r.expectTag(atv, TAG.SEQUENCE));
      if (type !== undefined && value !== undefined && r.oid(type) === OID_COMMON_NAME) return r.text(value);
    }
  }
  return '';
}

/**
 * Bounded memo tables for pure computations that recur for every quote of a
 * platform (its CA certificates, its PCK certificate): parsed public keys by
 * exact SPKI bytes, and POSITIVE certificate-signature results by (certificate
 * digest, issuer key). Only successes are remembered, so they can never turn a
 * failure into a success for different bytes.
 */
const MEMO_LIMIT = 512;
const keyMemo = new Map<string, KeyObject>();
const verifiedMemo = new Set<string>();

function remember<T>(map: Map<string, T> | Set<string>, key: string, value?: T): void {
  if (map.size >= MEMO_LIMIT) map.clear();
  if (map instanceof Map) map.set(key, value as T);
  else map.add(key);
}

function publicKeyFrom(r: DerReader, spki: Uint8Array, spkiId: string): KeyObject {
  const known = keyMemo.get(spkiId);
  if (known !== undefined) return known;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw new AttestationError(r.code, `${r.what}: public key cannot be parsed`, undefined, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ec') throw new AttestationError('UNSUPPORTED_ALGORITHM', `${r.what}: public key is not an EC key`);
  remember(keyMemo, spkiId, key);
  return key;
}

/** Parses one DER certificate. `code` is used for layout errors (EVIDENCE_MALFORMED or INVALID_ARGUMENT). */
export function parseCert(der: Uint8Array, code: AttestationErrorCode, what: string): Cert {
  const r = new DerReader(der, code, what);
  const certTlv = r.readWhole(0, der.length, TAG.SEQUENCE);
  const [tbsTlv, sigAlgTlv, sigTlv, ...rest] = r.children(certTlv);
  if (tbsTlv === undefined || sigAlgTlv === undefined || sigTlv === undefined || rest.length > 0) throw r.fail('not a certificate');
  r.expectTag(tbsTlv, TAG.SEQUENCE);
  const sigHash = algorithmHash(r, sigAlgTlv);
  const signature = r.bitStringBytes(sigTlv);

  const fields = r.children(tbsTlv);
  let i = 0;
  if (fields[0]?.tag === 0xa0) {
    const [version] = r.children(fields[0]);
    if (version === undefined || r.smallUint(version) !== 2) throw r.fail('certificate is not X.509 v3');
    i = 1;
  } else {
    throw r.fail('certificate is not X.509 v3');
  }
  const need = (): Tlv => {
    const field = fields[i++];
    if (field === undefined) throw r.fail('truncated TBSCertificate');
    return field;
  };
  const serialTlv = need();
  const innerAlg = need();
  const issuerTlv = r.expectTag(need(), TAG.SEQUENCE);
  const validity = r.children(r.expectTag(need(), TAG.SEQUENCE));
  const subjectTlv = r.expectTag(need(), TAG.SEQUENCE);
  const spkiTlv = r.expectTag(need(), TAG.SEQUENCE);
  if (!bytesEqual(r.raw(innerAlg), r.raw(sigAlgTlv))) throw r.fail('signature algorithm differs inside and outside the TBSCertificate');
  if (validity.length !== 2) throw r.fail('bad Validity');
  const notBefore = r.time(validity[0]!);
  const notAfter = r.time(validity[1]!);

  // SubjectPublicKeyInfo must be an EC key.
  const [spkiAlg] = r.children(spkiTlv);
  if (spkiAlg === undefined) throw r.fail('bad SubjectPublicKeyInfo');
  const [keyOid] = r.children(r.expectTag(spkiAlg, TAG.SEQUENCE));
  if (keyOid === undefined || r.oid(keyOid) !== OID_EC_PUBLIC_KEY) {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `${what}: public key is not an EC key`);
  }
  const spki = r.raw(spkiTlv);

  const extensions = new Map<string, CertExtension>();
  for (; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.tag === 0xa1 || f.tag === 0xa2) continue; // issuer/subject unique IDs
    if (f.tag !== 0xa3) throw r.fail('unexpected field in TBSCertificate');
    const [extsTlv, ...more] = r.children(f);
    if (extsTlv === undefined || more.length > 0) throw r.fail('bad extensions');
    for (const ext of r.children(r.expectTag(extsTlv, TAG.SEQUENCE))) {
      const parts = r.children(r.expectTag(ext, TAG.SEQUENCE));
      if (parts.length < 2 || parts.length > 3) throw r.fail('bad extension');
      const oid = r.oid(parts[0]!);
      const critical = parts.length === 3 ? r.boolean(parts[1]!) : false;
      const value = r.bytes(r.expectTag(parts[parts.length - 1]!, TAG.OCTET_STRING));
      if (extensions.has(oid)) throw r.fail(`duplicate extension ${oid}`);
      extensions.set(oid, { critical, value });
    }
  }
  for (const [oid, ext] of extensions) {
    if (ext.critical && !KNOWN_CRITICAL.has(oid)) {
      throw new AttestationError('CHAIN_INVALID', `${what}: unsupported critical extension ${oid}`);
    }
  }

  let isCa = false;
  const bc = extensions.get(OID_BASIC_CONSTRAINTS);
  if (bc !== undefined) {
    const br = new DerReader(bc.value, code, `${what} basicConstraints`);
    const parts = br.children(br.readWhole(0, bc.value.length, TAG.SEQUENCE));
    if (parts[0]?.tag === TAG.BOOLEAN) isCa = br.boolean(parts[0]);
  }
  let keyUsage: number | undefined;
  const ku = extensions.get(OID_KEY_USAGE);
  if (ku !== undefined) {
    const kr = new DerReader(ku.value, code, `${what} keyUsage`);
    const tlv = kr.readWhole(0, ku.value.length, TAG.BIT_STRING);
    const c = kr.bytes(tlv);
    if (c.length < 1 || c[0]! > 7) throw kr.fail('bad KeyUsage');
    keyUsage = c.length > 1 ? c[1]! : 0;
  }

  const spkiId = sha256Hex(spki);
  const cert: Cert = {
    der,
    digest: sha256Hex(der),
    tbs: r.raw(tbsTlv),
    sigHash,
    signature,
    serial: r.integerHex(serialTlv),
    issuer: r.raw(issuerTlv),
    subject: r.raw(subjectTlv),
    subjectCn: commonName(r, subjectTlv),
    issuerCn: commonName(r, issuerTlv),
    notBefore,
    notAfter,
    spki,
    spkiId,
    key: publicKeyFrom(r, spki, spkiId),
    extensions,
    isCa,
  };
  return keyUsage === undefined ? cert : { ...cert, keyUsage };
}

/** ECDSA over `data` with a DER-encoded signature (X.509 / CRL signatures). */
export function verifyDerSignature(key: KeyObject, hash: string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify(hash, data, key, signature);
  } catch {
    return false;
  }
}

/** ECDSA P-256/SHA-256 with a raw r‖s signature (quote, QE report, collateral). Accepts high-S signatures. */
export function verifyP1363(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** Certificate signature by the issuer key whose SPKI digest is `issuerKeyId`. */
export function certSignedBy(cert: Cert, issuerKey: KeyObject, issuerKeyId: string): boolean {
  const memo = `${cert.digest}|${issuerKeyId}`;
  if (verifiedMemo.has(memo)) return true;
  const ok = verifyDerSignature(issuerKey, cert.sigHash, cert.tbs, cert.signature);
  if (ok) remember(verifiedMemo, memo);
  return ok;
}

const PEM_BLOCK_RE = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END CERTIFICATE-----/g;

/**
 * Splits a PEM certificate bundle (as in certification data type 5: leaf first,
 * often followed by NUL bytes). Only PEM blocks, line breaks and trailing NULs
 * are allowed; base64 must be canonical, so no changed character goes unnoticed.
 */
export function splitPemChain(data: Uint8Array, code: AttestationErrorCode, what: string): Uint8Array[] {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  for (let i = 0; i < end; i++) {
    const c = data[i]!;
    if (c > 0x7e || (c < 0x20 && c !== 0x0a && c !== 0x0d)) throw new AttestationError(code, `${what}: not PEM text`);
  }
  const text = Buffer.from(data.subarray(0, end)).toString('latin1');
  const out: Uint8Array[] = [];
  let last = 0;
  for (const m of text.matchAll(PEM_BLOCK_RE)) {
    if (!/^[\r\n]*$/.test(text.slice(last, m.index))) throw new AttestationError(code, `${what}: text outside PEM blocks`);
    const der = fromBase64Strict(m[1]!.replace(/\r?\n/g, ''));
    if (der === undefined || der.length === 0) throw new AttestationError(code, `${what}: PEM body is not canonical base64`);
    out.push(der);
    last = m.index + m[0].length;
    if (out.length > 8) throw new AttestationError(code, `${what}: too many certificates`);
  }
  if (!/^[\r\n]*$/.test(text.slice(last))) throw new AttestationError(code, `${what}: text outside PEM blocks`);
  if (out.length === 0) throw new AttestationError(code, `${what}: no PEM certificate`);
  return out;
}

/** A DER certificate, or one PEM certificate given as bytes (collateral convenience). */
export function certBytes(input: Uint8Array, code: AttestationErrorCode, what: string): Uint8Array {
  if (input.length > 0 && input[0] === 0x2d /* '-' */) {
    const certs = splitPemChain(input, code, what);
    if (certs.length !== 1) throw new AttestationError(code, `${what}: expected exactly one PEM certificate`);
    return certs[0]!;
  }
  return input;
}

// ---------------------------------------------------------------- CRLs

export interface Crl {
  readonly tbs: Uint8Array;
  readonly sigHash: string;
  readonly signature: Uint8Array;
  readonly issuer: Uint8Array;
  readonly issuerCn: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Revoked serial numbers (lowercase hex magnitude). */
  readonly revoked: ReadonlySet<string>;
}

const KNOWN_CRITICAL_CRL_EXTENSIONS = new Set<string>(); // none: an indirect/partitioned CRL is refused

/** Parses a DER CRL (CertificateList). Layout errors use `code`. */
export function parseCrl(der: Uint8Array, code: AttestationErrorCode, what: string): Crl {
  const r = new DerReader(der, code, what);
  const top = r.readWhole(0, der.length, TAG.SEQUENCE);
  const [tbsTlv, sigAlgTlv, sigTlv, ...rest] = r.children(top);
  if (tbsTlv === undefined || sigAlgTlv === undefined || sigTlv === undefined || rest.length > 0) throw r.fail('not a CRL');
  r.expectTag(tbsTlv, TAG.SEQUENCE);
  const sigHash = algorithmHash(r, sigAlgTlv);
  const signature = r.bitStringBytes(sigTlv);
  const f = r.children(tbsTlv);
  let i = 0;
  if (f[i]?.tag === TAG.INTEGER) {
    if (r.smallUint(f[i]!) !== 1) throw r.fail('unsupported CRL version');
    i++;
  }
  const innerAlg = f[i++];
  if (innerAlg === undefined || !bytesEqual(r.raw(innerAlg), r.raw(sigAlgTlv))) throw r.fail('CRL signature algorithm mismatch');
  const issuerTlv = f[i++];
  if (issuerTlv === undefined) throw r.fail('truncated CRL');
  r.expectTag(issuerTlv, TAG.SEQUENCE);
  const thisTlv = f[i++];
  if (thisTlv === undefined) throw r.fail('truncated CRL');
  const thisUpdate = r.time(thisTlv);
  if (!r.isTime(f[i])) throw r.fail('CRL without nextUpdate');
  const nextUpdate = r.time(f[i++]!);
  const revoked = new Set<string>();
  if (f[i]?.tag === TAG.SEQUENCE) {
    for (const entry of r.children(f[i]!)) {
      const parts = r.children(r.expectTag(entry, TAG.SEQUENCE));
      if (parts.length < 2 || parts.length > 3) throw r.fail('bad CRL entry');
      revoked.add(r.integerHex(parts[0]!));
      r.time(parts[1]!);
      if (parts[2] !== undefined) checkCrlExtensions(r, parts[2]);
    }
    i++;
  }
  if (f[i]?.tag === 0xa0) {
    const [exts, ...more] = r.children(f[i]!);
    if (exts === undefined || more.length > 0) throw r.fail('bad CRL extensions');
    checkCrlExtensions(r, exts);
    i++;
  }
  if (i !== f.length) throw r.fail('unexpected field in TBSCertList');
  return {
    tbs: r.raw(tbsTlv),
    sigHash,
    signature,
    issuer: r.raw(issuerTlv),
    issuerCn: commonName(r, issuerTlv),
    thisUpdate,
    nextUpdate,
    revoked,
  };
}

function checkCrlExtensions(r: DerReader, exts: Tlv): void {
  for (const ext of r.children(r.expectTag(exts, TAG.SEQUENCE))) {
    const parts = r.children(r.expectTag(ext, TAG.SEQUENCE));
    if (parts.length < 2 || parts.length > 3) throw r.fail('bad CRL extension');
    const oid = r.oid(parts[0]!);
    const critical = parts.length === 3 ? r.boolean(parts[1]!) : false;
    r.expectTag(parts[parts.length - 1]!, TAG.OCTET_STRING);
    if (critical && !KNOWN_CRITICAL_CRL_EXTENSIONS.has(oid)) {
      throw new AttestationError('INVALID_ARGUMENT', `${r.what}: unsupported critical CRL extension ${oid}`);
    }
  }
}
