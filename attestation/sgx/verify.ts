import { createPublicKey, type KeyObject } from 'node:crypto';
import { AttestationError, guarded } from '../errors.js';
import { bytesEqual, deepFreeze, isAllZero, isBytes, sha256, sha256Hex, toHex } from '../internal/bytes.js';
import { parsePinnedEcKey, type PinnedKey } from '../internal/keys.js';
import type { AttestationResult, TcbStatus, TcbSummary } from '../result.js';
import { INTEL_SGX_ROOT_PUBLIC_KEY_PEM } from '../roots/intel.js';
import {
  convergeTcbStatus,
  matchEnclaveLevel,
  matchTcbLevel,
  parseEnclaveIdentity,
  parseTcbInfo,
  splitSignedCollateral,
  type EnclaveIdentity,
  type TcbInfo,
} from './collateral.js';
import { pckExtensions, type PckExtensions, type SgxType } from './pck.js';
import {
  CERT_DATA_PCK_CHAIN,
  INTEL_QE_VENDOR_ID,
  parseDcapQuote,
  unwrapDcapInput,
  type DcapQuote,
  type SgxReportBody,
  type UnwrappedQuote,
} from './quote.js';
import {
  KEY_USAGE,
  certBytes,
  certSignedBy,
  parseCert,
  parseCrl,
  splitPemChain,
  verifyDerSignature,
  verifyP1363,
  type Cert,
  type Crl,
} from './x509.js';

/** Collateral as Intel PCS serves it. Each item is evaluated when given. */
export interface SgxCollateral {
  /** TCB info JSON text, exactly as served (`{"tcbInfo":{…},"signature":"…"}`). */
  readonly tcbInfo?: string;
  /** QE identity JSON text, exactly as served (`{"enclaveIdentity":{…},"signature":"…"}`). */
  readonly qeIdentity?: string;
  /**
   * DER CRLs: the Intel SGX Root CA CRL and the CRL of the PCK certificate's
   * issuer (PCK Platform CA or PCK Processor CA). Given at all ⇒ both are required.
   */
  readonly crls?: readonly Uint8Array[];
  /**
   * Chain of the TCB Signing certificate that signed tcbInfo / qeIdentity (DER or
   * PEM bytes, one certificate each): [signing] or [signing, root]. Required with
   * tcbInfo or qeIdentity (PCS sends it in the *-Issuer-Chain response header).
   */
  readonly tcbSigningChain?: readonly Uint8Array[];
}

export interface SgxVerifyOptions {
  /** Evaluation time for certificates, CRLs and collateral. Never read from the clock. */
  readonly now: Date;
  /** With collateral, TCB status and revocation are evaluated; without, they are reported as unknown. */
  readonly collateral?: SgxCollateral;
  /**
   * Pinned root public keys, SPKI PEM ("BEGIN PUBLIC KEY", EC P-256). Default:
   * the embedded Intel SGX Root CA key only. Tests pin their own test roots here.
   * An empty list trusts nothing.
   */
  readonly trustedRoots?: readonly string[];
}

export type CollateralItemState = 'evaluated' | 'not-supplied';

/** Everything the quote proved beyond the common AttestationResult fields (hex lowercase). */
export interface DcapQuoteDetails {
  readonly version: 3 | 4;
  readonly teeType: 'sgx' | 'tdx';
  readonly container: UnwrappedQuote['container'];
  readonly openEnclaveHeader: boolean;
  readonly qeVendorId: string;
  readonly userData: string;
  /** SGX enclave identity (SGX quotes). */
  readonly enclave?: {
    readonly mrEnclave: string;
    readonly mrSigner: string;
    readonly isvProdId: number;
    readonly isvSvn: number;
    readonly configSvn: number;
    readonly attributes: string;
    readonly miscSelect: number;
    readonly cpuSvn: string;
    readonly isvExtProdId: string;
    readonly isvFamilyId: string;
    readonly configId: string;
  };
  /** TD identity (TDX quotes). */
  readonly td?: {
    readonly mrTd: string;
    readonly mrConfigId: string;
    readonly mrOwner: string;
    readonly mrOwnerConfig: string;
    readonly rtmrs: readonly string[];
    readonly mrSeam: string;
    readonly mrSignerSeam: string;
    readonly teeTcbSvn: string;
    readonly tdAttributes: string;
    readonly seamAttributes: string;
    readonly xfam: string;
  };
  readonly qe: { readonly mrEnclave: string; readonly mrSigner: string; readonly isvProdId: number; readonly isvSvn: number };
  readonly pck: {
    readonly ppid: string;
    readonly fmspc: string;
    readonly pceId: string;
    readonly pceSvn: number;
    readonly cpuSvn: string;
    readonly tcbComponents: readonly number[];
    readonly sgxType: SgxType;
    readonly platformInstanceId?: string;
    readonly serial: string;
    readonly issuer: string;
  };
  readonly collateral: {
    readonly tcbInfo: CollateralItemState;
    readonly qeIdentity: CollateralItemState;
    readonly revocation: 'checked' | 'not-checked';
    /** Platform TCB level status before combining with the QE status. */
    readonly platformTcbStatus?: TcbStatus;
    readonly tcbDate?: string;
    readonly tcbEvaluationDataNumber?: number;
    readonly qeTcbStatus?: TcbStatus;
    readonly qeAdvisoryIds?: readonly string[];
  };
}

export interface DcapVerification {
  readonly result: AttestationResult;
  readonly details: DcapQuoteDetails;
}

let defaultRoots: readonly PinnedKey[] | undefined;

function pinnedRoots(trusted: unknown): readonly PinnedKey[] {
  if (trusted === undefined) {
    defaultRoots ??= [parsePinnedEcKey(INTEL_SGX_ROOT_PUBLIC_KEY_PEM, 'prime256v1', 'embedded Intel SGX Root CA key')];
    return defaultRoots;
  }
  if (!Array.isArray(trusted) || trusted.length > 64) throw new AttestationError('INVALID_ARGUMENT', 'trustedRoots must be an array of SPKI PEM strings');
  return trusted.map((pem: unknown, i) => {
    const known = typeof pem === 'string' ? rootMemo.get(pem) : undefined;
    if (known !== undefined) return known;
    const parsed = parsePinnedEcKey(pem, 'prime256v1', `trustedRoots[${i}]`);
    if (rootMemo.size >= 64) rootMemo.clear();
    rootMemo.set(pem as string, parsed);
    return parsed;
  });
}

/** Parsed pinned keys by their PEM text, and attestation keys by their raw bytes (pure, bounded memo tables). */
const rootMemo = new Map<string, PinnedKey>();
const attKeyMemo = new Map<string, KeyObject>();

function checkOptions(options: unknown): { now: Date; collateral: SgxCollateral; roots: readonly PinnedKey[] } {
  if (options === null || typeof options !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'options must be an object');
  const o = options as Record<string, unknown>;
  const now = o['now'];
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new AttestationError('INVALID_ARGUMENT', 'now must be a valid Date');
  const c = o['collateral'] ?? {};
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new AttestationError('INVALID_ARGUMENT', 'collateral must be an object');
  const col = c as Record<string, unknown>;
  for (const key of ['tcbInfo', 'qeIdentity'] as const) {
    if (col[key] !== undefined && typeof col[key] !== 'string') throw new AttestationError('INVALID_ARGUMENT', `collateral.${key} must be JSON text`);
  }
  for (const key of ['crls', 'tcbSigningChain'] as const) {
    const v = col[key];
    if (v !== undefined && (!Array.isArray(v) || v.length > 16 || !v.every((x) => isBytes(x)))) {
      throw new AttestationError('INVALID_ARGUMENT', `collateral.${key} must be an array of byte arrays`);
    }
  }
  return { now, collateral: col as SgxCollateral, roots: pinnedRoots(o['trustedRoots']) };
}

/** Validity window bookkeeping: the intersection of everything relied on. */
class Window {
  notBefore = -Infinity;
  notAfter = Infinity;
  constructor(readonly now: Date) {}
  /** Checks `now` lies in [from, to] and narrows the window. */
  require(from: Date, to: Date, what: string): void {
    const t = this.now.getTime();
    if (t < from.getTime()) {
      throw new AttestationError('EVIDENCE_NOT_YET_VALID', `${what} is valid from ${from.toISOString()}, evaluation time ${this.now.toISOString()}`, {
        what,
        notBefore: from.toISOString(),
      });
    }
    if (t > to.getTime()) {
      throw new AttestationError('EVIDENCE_EXPIRED', `${what} expired ${to.toISOString()}, evaluation time ${this.now.toISOString()}`, {
        what,
        notAfter: to.toISOString(),
      });
    }
    this.notBefore = Math.max(this.notBefore, from.getTime());
    this.notAfter = Math.min(this.notAfter, to.getTime());
  }
}

function rawP256Key(xy: Uint8Array): KeyObject | undefined {
  const id = toHex(xy);
  const known = attKeyMemo.get(id);
  if (known !== undefined) return known;
  try {
    const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
    const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(xy.subarray(0, 32)), y: b64(xy.subarray(32, 64)) }, format: 'jwk' });
    if (attKeyMemo.size >= 256) attKeyMemo.clear();
    attKeyMemo.set(id, key);
    return key;
  } catch {
    return undefined;
  }
}

function requireP256(cert: Cert, what: string): void {
  if (cert.key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `${what} key is not EC P-256`);
  }
}

interface PckChain {
  readonly pck: Cert;
  readonly intermediate: Cert;
  readonly root?: Cert;
  readonly anchor: PinnedKey;
}

/** PCK leaf → PCK Platform/Processor CA → (root certificate) → pinned root key. */
function verifyPckChain(certData: Uint8Array, roots: readonly PinnedKey[], window: Window): PckChain {
  const ders = splitPemChain(certData, 'EVIDENCE_MALFORMED', 'PCK certificate chain');
  if (ders.length < 2 || ders.length > 3) {
    throw new AttestationError('CHAIN_INVALID', `PCK certificate chain has ${ders.length} certificates, expected PCK, intermediate CA and root`);
  }
  const names = ['PCK certificate', 'PCK intermediate CA certificate', 'root CA certificate'];
  const certs = ders.map((der, i) => parseCert(der, 'EVIDENCE_MALFORMED', names[i]!));
  const [pck, intermediate, root] = certs as [Cert, Cert, Cert | undefined];

  let anchor: PinnedKey | undefined;
  if (root !== undefined) {
    anchor = roots.find((r) => bytesEqual(r.spkiDer, root.spki));
    if (anchor === undefined) {
      throw new AttestationError('UNTRUSTED_ROOT', `the quote's root CA "${root.subjectCn}" is not a pinned root key`, { rootKeyId: root.spkiId });
    }
    if (!bytesEqual(root.issuer, root.subject) || !certSignedBy(root, anchor.key, anchor.keyId)) throw new AttestationError('CHAIN_INVALID', 'root CA certificate is not self-signed');
    if (!root.isCa) throw new AttestationError('CHAIN_INVALID', 'root CA certificate is not a CA');
    if (!bytesEqual(intermediate.issuer, root.subject)) throw new AttestationError('CHAIN_INVALID', 'intermediate CA was not issued by the root CA (name mismatch)');
    if (!certSignedBy(intermediate, anchor.key, anchor.keyId)) throw new AttestationError('CHAIN_INVALID', 'intermediate CA certificate is not signed by the root CA');
  } else {
    anchor = roots.find((r) => certSignedBy(intermediate, r.key, r.keyId));
    if (anchor === undefined) throw new AttestationError('UNTRUSTED_ROOT', 'the PCK intermediate CA is not signed by a pinned root key');
  }
  if (!intermediate.isCa || (intermediate.keyUsage !== undefined && (intermediate.keyUsage & KEY_USAGE.keyCertSign) === 0)) {
    throw new AttestationError('CHAIN_INVALID', `"${intermediate.subjectCn}" is not a certificate-signing CA`);
  }
  if (!bytesEqual(pck.issuer, intermediate.subject)) throw new AttestationError('CHAIN_INVALID', 'PCK certificate was not issued by the intermediate CA (name mismatch)');
  if (!certSignedBy(pck, intermediate.key, intermediate.spkiId)) throw new AttestationError('CHAIN_INVALID', 'PCK certificate is not signed by the intermediate CA');
  if (pck.isCa) throw new AttestationError('CHAIN_INVALID', 'PCK certificate is a CA certificate');
  requireP256(pck, 'PCK certificate');

  window.require(pck.notBefore, pck.notAfter, 'PCK certificate');
  window.require(intermediate.notBefore, intermediate.notAfter, `intermediate CA certificate "${intermediate.subjectCn}"`);
  if (root !== undefined) window.require(root.notBefore, root.notAfter, 'root CA certificate');
  return root === undefined ? { pck, intermediate, anchor } : { pck, intermediate, root, anchor };
}

/** TCB Signing certificate (signs TCB info / QE identity), chained to the same pinned root as the PCK chain. */
function verifyTcbSigningChain(chain: readonly Uint8Array[] | undefined, pckChain: PckChain, window: Window): Cert {
  if (chain === undefined || chain.length === 0) {
    throw new AttestationError('COLLATERAL_MISSING', 'collateral.tcbSigningChain (the TCB Signing certificate) is needed to check TCB info / QE identity');
  }
  if (chain.length > 2) throw new AttestationError('INVALID_ARGUMENT', 'collateral.tcbSigningChain must be [signing] or [signing, root]');
  const certs = chain.map((c, i) => parseCert(certBytes(c, 'INVALID_ARGUMENT', `tcbSigningChain[${i}]`), 'INVALID_ARGUMENT', `tcbSigningChain[${i}]`));
  const [signer, root] = certs as [Cert, Cert | undefined];
  const anchor = pckChain.anchor;
  const rootName = pckChain.root?.subject ?? pckChain.intermediate.issuer;
  if (root !== undefined) {
    if (!bytesEqual(root.spki, anchor.spkiDer)) throw new AttestationError('UNTRUSTED_ROOT', 'TCB signing chain root is not the root of the PCK chain');
    if (!certSignedBy(root, anchor.key, anchor.keyId)) throw new AttestationError('CHAIN_INVALID', 'TCB signing chain root certificate is not self-signed');
    window.require(root.notBefore, root.notAfter, 'TCB signing chain root certificate');
  }
  if (!certSignedBy(signer, anchor.key, anchor.keyId)) {
    throw new AttestationError(root === undefined ? 'UNTRUSTED_ROOT' : 'CHAIN_INVALID', 'TCB Signing certificate is not signed by the pinned root of the PCK chain');
  }
  if (!bytesEqual(signer.issuer, rootName)) throw new AttestationError('CHAIN_INVALID', 'TCB Signing certificate issuer is not the root CA (name mismatch)');
  if (signer.isCa) throw new AttestationError('CHAIN_INVALID', 'TCB Signing certificate is a CA certificate');
  if (signer.keyUsage !== undefined && (signer.keyUsage & KEY_USAGE.digitalSignature) === 0) {
    throw new AttestationError('CHAIN_INVALID', 'TCB Signing certificate lacks the digitalSignature key usage');
  }
  requireP256(signer, 'TCB Signing certificate');
  window.require(signer.notBefore, signer.notAfter, 'TCB Signing certificate');
  return signer;
}

function checkCollateralSignature(text: string, member: 'tcbInfo' | 'enclaveIdentity', what: string, signer: Cert): unknown {
  const signed = splitSignedCollateral(text, member, what);
  if (!verifyP1363(signer.key, signed.signed, signed.signature)) {
    throw new AttestationError('SIGNATURE_INVALID', `${what} signature does not verify under the TCB Signing certificate`, { what });
  }
  return signed.value;
}

function maskedEqual(value: Uint8Array, mask: Uint8Array, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (((value[i] ?? 0) & mask[i]!) !== expected[i]) return false;
  return true;
}

function checkQeIdentity(
  identity: EnclaveIdentity,
  qe: SgxReportBody,
  teeType: 'sgx' | 'tdx',
  window: Window,
): { status: TcbStatus; advisoryIds: readonly string[] } {
  const expectedId = teeType === 'tdx' ? 'TD_QE' : 'QE';
  if (identity.id !== expectedId) {
    throw new AttestationError('COLLATERAL_MISSING', `QE identity is for "${identity.id}", this ${teeType.toUpperCase()} quote needs "${expectedId}"`);
  }
  window.require(identity.issueDate, identity.nextUpdate, 'QE identity');
  const mismatch = (field: string): AttestationError =>
    new AttestationError('CHAIN_INVALID', `the quoting enclave does not match the QE identity (${field})`, { field });
  if (toHex(qe.mrSigner) !== identity.mrsigner) throw mismatch('mrsigner');
  if (qe.isvProdId !== identity.isvProdId) throw mismatch('isvprodid');
  if (((qe.miscSelect & identity.miscselectMask) >>> 0) !== identity.miscselect >>> 0) throw mismatch('miscselect');
  if (!maskedEqual(qe.attributes, identity.attributesMask, identity.attributes)) throw mismatch('attributes');
  const level = matchEnclaveLevel(identity, qe.isvSvn);
  if (level === undefined) throw new AttestationError('TCB_TOO_LOW', `QE ISVSVN ${qe.isvSvn} is below every level of the QE identity`, { qeSvn: qe.isvSvn });
  if (level.status === 'Revoked') throw new AttestationError('REVOKED', `QE ISVSVN ${qe.isvSvn} is revoked by the QE identity`, { qeSvn: qe.isvSvn });
  return { status: level.status, advisoryIds: level.advisoryIds };
}

function checkRevocation(crlDers: readonly Uint8Array[], chain: PckChain, signer: Cert | undefined, window: Window): void {
  const rootName = chain.root?.subject ?? chain.intermediate.issuer;
  const byRoot: Crl[] = [];
  const byIntermediate: Crl[] = [];
  crlDers.forEach((der, i) => {
    const crl = parseCrl(der, 'INVALID_ARGUMENT', `collateral.crls[${i}]`);
    let issuerKey: KeyObject;
    let issuerCert: Cert | undefined;
    let bucket: Crl[];
    if (bytesEqual(crl.issuer, rootName)) {
      issuerKey = chain.anchor.key;
      issuerCert = chain.root;
      bucket = byRoot;
    } else if (bytesEqual(crl.issuer, chain.intermediate.subject)) {
      issuerKey = chain.intermediate.key;
      issuerCert = chain.intermediate;
      bucket = byIntermediate;
    } else {
      return; // a CRL of some other CA: irrelevant to this chain
    }
    if (!verifyDerSignature(issuerKey, crl.sigHash, crl.tbs, crl.signature)) {
      throw new AttestationError('SIGNATURE_INVALID', `CRL of "${crl.issuerCn}" is not signed by its issuer`, { what: 'crl' });
    }
    if (issuerCert?.keyUsage !== undefined && (issuerCert.keyUsage & KEY_USAGE.cRLSign) === 0) {
      throw new AttestationError('CHAIN_INVALID', `"${issuerCert.subjectCn}" may not sign CRLs`);
    }
    window.require(crl.thisUpdate, crl.nextUpdate, `CRL of "${crl.issuerCn}"`);
    bucket.push(crl);
  });
  if (byRoot.length === 0) throw new AttestationError('COLLATERAL_MISSING', 'collateral.crls lacks the root CA CRL');
  if (byIntermediate.length === 0) {
    throw new AttestationError('COLLATERAL_MISSING', `collateral.crls lacks the CRL of "${chain.intermediate.subjectCn}" (the PCK issuer)`);
  }
  const revoked = (crls: Crl[], cert: Cert, what: string): void => {
    if (crls.some((c) => c.revoked.has(cert.serial))) {
      throw new AttestationError('REVOKED', `${what} (serial ${cert.serial}) is revoked`, { serial: cert.serial, what });
    }
  };
  revoked(byIntermediate, chain.pck, 'PCK certificate');
  revoked(byRoot, chain.intermediate, `intermediate CA "${chain.intermediate.subjectCn}"`);
  if (signer !== undefined) revoked(byRoot, signer, 'TCB Signing certificate');
}

function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Verifies an Intel DCAP quote (SGX v3/v4, TDX v4) and returns the full
 * details alongside the common result. See verifySgxQuote.
 */
export function verifySgxQuoteDetailed(input: Uint8Array, options: SgxVerifyOptions): DcapVerification {
  return guarded('verifySgxQuote', () => verifyImpl(input, options));
}

/**
 * Verifies an Intel SGX DCAP quote (version 3; also version 4 SGX and TDX 1.0
 * quotes) given as raw bytes, hex text, with the Open Enclave header, or inside
 * the Azure sample JSON (`QuoteHex`). Throws only AttestationError.
 */
export function verifySgxQuote(input: Uint8Array, options: SgxVerifyOptions): AttestationResult {
  return verifySgxQuoteDetailed(input, options).result;
}

function verifyImpl(input: Uint8Array, options: SgxVerifyOptions): DcapVerification {
  const { now, collateral, roots } = checkOptions(options);
  if (!isBytes(input)) throw new AttestationError('EVIDENCE_MALFORMED', 'evidence is not a byte array');
  const evidenceDigest = sha256Hex(input);
  const unwrapped = unwrapDcapInput(input);
  const quote: DcapQuote = parseDcapQuote(unwrapped.quote);

  if (toHex(quote.qeVendorId) !== INTEL_QE_VENDOR_ID) {
    throw new AttestationError('UNSUPPORTED_PLATFORM', `quoting enclave vendor ${toHex(quote.qeVendorId)} is not Intel's`, { qeVendorId: toHex(quote.qeVendorId) });
  }
  if (quote.certificationDataType !== CERT_DATA_PCK_CHAIN) {
    throw new AttestationError(
      'COLLATERAL_MISSING',
      `certification data type ${quote.certificationDataType} does not carry the PCK certificate chain (type 5); fetching the PCK certificate is not supported`,
      { certificationDataType: quote.certificationDataType },
    );
  }

  const window = new Window(now);
  // 1. PCK chain to a pinned root, validity at `now`.
  const chain = verifyPckChain(quote.certificationData, roots, window);
  const pck: PckExtensions = pckExtensions(chain.pck);

  // 2. QE report signed by the PCK key.
  if (!verifyP1363(chain.pck.key, quote.qeReport.raw, quote.qeReportSignature)) {
    throw new AttestationError('SIGNATURE_INVALID', 'QE report signature does not verify under the PCK certificate key', { check: 'qe-report' });
  }
  // 3. QE report binds the attestation key: REPORTDATA = SHA-256(att key ‖ QE auth data) ‖ 32 zero bytes.
  const binding = sha256(new Uint8Array([...quote.attestationKey, ...quote.qeAuthData]));
  if (!bytesEqual(quote.qeReport.reportData.subarray(0, 32), binding) || !isAllZero(quote.qeReport.reportData, 32, 64)) {
    throw new AttestationError('SIGNATURE_INVALID', 'QE report does not bind the attestation key (REPORTDATA ≠ SHA-256(attestation key ‖ QE auth data) ‖ 0…)', {
      check: 'qe-binding',
    });
  }
  // 4. Quote signed by the attestation key.
  const attKey = rawP256Key(quote.attestationKey);
  if (attKey === undefined || !verifyP1363(attKey, quote.signedBytes, quote.signature)) {
    throw new AttestationError('SIGNATURE_INVALID', 'quote signature does not verify under the attestation key', { check: 'quote' });
  }

  const sgx = quote.sgxReport;
  const td = quote.tdReport;
  const reportData = sgx?.reportData ?? td!.reportData;

  // Azure sample JSON: its unsigned convenience fields must agree with the signed quote.
  if (unwrapped.azure !== undefined) {
    const az = unwrapped.azure;
    if (sgx === undefined) throw new AttestationError('EVIDENCE_MALFORMED', 'Azure quote JSON carries a non-SGX quote');
    if (az.mrEnclaveHex !== undefined && az.mrEnclaveHex !== toHex(sgx.mrEnclave)) throw new AttestationError('EVIDENCE_MALFORMED', 'Azure quote JSON MrEnclaveHex differs from the quote');
    if (az.mrSignerHex !== undefined && az.mrSignerHex !== toHex(sgx.mrSigner)) throw new AttestationError('EVIDENCE_MALFORMED', 'Azure quote JSON MrSignerHex differs from the quote');
    if (az.enclaveHeldData !== undefined && !bytesEqual(sha256(az.enclaveHeldData), reportData.subarray(0, 32))) {
      throw new AttestationError('REPORT_DATA_MISMATCH', 'REPORTDATA[0:32] is not SHA-256 of the JSON EnclaveHeldDataHex');
    }
  }

  // 5. Collateral.
  let signer: Cert | undefined;
  let tcbInfo: TcbInfo | undefined;
  let identity: EnclaveIdentity | undefined;
  if (collateral.tcbInfo !== undefined || collateral.qeIdentity !== undefined) {
    signer = verifyTcbSigningChain(collateral.tcbSigningChain, chain, window);
  }
  let platformStatus: TcbStatus | undefined;
  let platformAdvisories: readonly string[] = [];
  let tcbDate: string | undefined;
  if (collateral.tcbInfo !== undefined) {
    tcbInfo = parseTcbInfo(checkCollateralSignature(collateral.tcbInfo, 'tcbInfo', 'TCB info', signer!));
    if (quote.teeType === 'tdx' || tcbInfo.id !== 'SGX') {
      throw new AttestationError('UNSUPPORTED_PLATFORM', `TCB info "${tcbInfo.id}" evaluation for ${quote.teeType.toUpperCase()} quotes is not implemented; verify without tcbInfo`);
    }
    if (tcbInfo.tcbType !== 0) throw new AttestationError('INVALID_ARGUMENT', `TCB info tcbType ${tcbInfo.tcbType} is not supported`);
    if (tcbInfo.fmspc !== pck.fmspc || tcbInfo.pceId !== pck.pceId) {
      throw new AttestationError('COLLATERAL_MISSING', `TCB info is for FMSPC ${tcbInfo.fmspc} / PCE ${tcbInfo.pceId}, the platform is FMSPC ${pck.fmspc} / PCE ${pck.pceId}`, {
        fmspc: pck.fmspc,
        collateralFmspc: tcbInfo.fmspc,
      });
    }
    window.require(tcbInfo.issueDate, tcbInfo.nextUpdate, 'TCB info');
    const level = matchTcbLevel(tcbInfo, pck.tcbComponents, pck.pceSvn);
    if (level === undefined) throw new AttestationError('TCB_TOO_LOW', 'the platform TCB is below every level of the TCB info', { fmspc: pck.fmspc });
    if (level.status === 'Revoked') throw new AttestationError('REVOKED', `the platform TCB level (${level.tcbDate}) is revoked`, { advisoryIds: level.advisoryIds });
    platformStatus = level.status;
    platformAdvisories = level.advisoryIds;
    tcbDate = level.tcbDate;
  }
  let qeResult: { status: TcbStatus; advisoryIds: readonly string[] } | undefined;
  if (collateral.qeIdentity !== undefined) {
    identity = parseEnclaveIdentity(checkCollateralSignature(collateral.qeIdentity, 'enclaveIdentity', 'QE identity', signer!));
    qeResult = checkQeIdentity(identity, quote.qeReport, quote.teeType, window);
  }
  const crls = collateral.crls;
  const revocationChecked = crls !== undefined && crls.length > 0;
  if (revocationChecked) checkRevocation(crls, chain, signer, window);

  // 6. Result.
  const components: Record<string, number> = {};
  if (sgx !== undefined) {
    components['isvProdId'] = sgx.isvProdId;
    components['isvSvn'] = sgx.isvSvn;
  } else {
    td!.teeTcbSvn.forEach((v, i) => (components[`teeTcbSvn${i}`] = v));
  }
  pck.tcbComponents.forEach((v, i) => (components[`cpuSvn${i}`] = v));
  components['pceSvn'] = pck.pceSvn;
  components['qeSvn'] = quote.qeReport.isvSvn;
  const pceSvnLe = toHex(new Uint8Array([pck.pceSvn & 0xff, pck.pceSvn >> 8]));
  let tcb: TcbSummary = { components, raw: sgx !== undefined ? pck.cpuSvn + pceSvnLe : toHex(td!.teeTcbSvn) };
  if (platformStatus !== undefined) {
    const advisoryIds = [...new Set([...platformAdvisories, ...(qeResult?.advisoryIds ?? [])])];
    tcb = { ...tcb, status: convergeTcbStatus(platformStatus, qeResult?.status), advisoryIds };
  }

  const result: AttestationResult = {
    platform: quote.teeType,
    measurement: toHex(sgx?.mrEnclave ?? td!.mrTd),
    reportData: toHex(reportData),
    debug: sgx?.debug ?? td!.debug,
    tcb,
    signingKey: 'pck',
    chipId: pck.ppid,
    validity: { notBefore: isoOf(window.notBefore), notAfter: isoOf(window.notAfter) },
    rootKeyId: chain.anchor.keyId,
    evidenceDigest,
  };

  const qe = quote.qeReport;
  const details: DcapQuoteDetails = {
    version: quote.version,
    teeType: quote.teeType,
    container: unwrapped.container,
    openEnclaveHeader: unwrapped.openEnclaveHeader,
    qeVendorId: toHex(quote.qeVendorId),
    userData: toHex(quote.userData),
    ...(sgx !== undefined
      ? {
          enclave: {
            mrEnclave: toHex(sgx.mrEnclave),
            mrSigner: toHex(sgx.mrSigner),
            isvProdId: sgx.isvProdId,
            isvSvn: sgx.isvSvn,
            configSvn: sgx.configSvn,
            attributes: toHex(sgx.attributes),
            miscSelect: sgx.miscSelect,
            cpuSvn: toHex(sgx.cpuSvn),
            isvExtProdId: toHex(sgx.isvExtProdId),
            isvFamilyId: toHex(sgx.isvFamilyId),
            configId: toHex(sgx.configId),
          },
        }
      : {
          td: {
            mrTd: toHex(td!.mrTd),
            mrConfigId: toHex(td!.mrConfigId),
            mrOwner: toHex(td!.mrOwner),
            mrOwnerConfig: toHex(td!.mrOwnerConfig),
            rtmrs: td!.rtmrs.map(toHex),
            mrSeam: toHex(td!.mrSeam),
            mrSignerSeam: toHex(td!.mrSignerSeam),
            teeTcbSvn: toHex(td!.teeTcbSvn),
            tdAttributes: toHex(td!.tdAttributes),
            seamAttributes: toHex(td!.seamAttributes),
            xfam: toHex(td!.xfam),
          },
        }),
    qe: { mrEnclave: toHex(qe.mrEnclave), mrSigner: toHex(qe.mrSigner), isvProdId: qe.isvProdId, isvSvn: qe.isvSvn },
    pck: {
      ppid: pck.ppid,
      fmspc: pck.fmspc,
      pceId: pck.pceId,
      pceSvn: pck.pceSvn,
      cpuSvn: pck.cpuSvn,
      tcbComponents: pck.tcbComponents,
      sgxType: pck.sgxType,
      ...(pck.platformInstanceId !== undefined ? { platformInstanceId: pck.platformInstanceId } : {}),
      serial: chain.pck.serial,
      issuer: chain.pck.issuerCn,
    },
    collateral: {
      tcbInfo: tcbInfo !== undefined ? 'evaluated' : 'not-supplied',
      qeIdentity: identity !== undefined ? 'evaluated' : 'not-supplied',
      revocation: revocationChecked ? 'checked' : 'not-checked',
      ...(platformStatus !== undefined ? { platformTcbStatus: platformStatus, tcbDate: tcbDate!, tcbEvaluationDataNumber: tcbInfo!.tcbEvaluationDataNumber } : {}),
      ...(qeResult !== undefined ? { qeTcbStatus: qeResult.status, qeAdvisoryIds: qeResult.advisoryIds } : {}),
    },
  };
  return deepFreeze({ result, details });
}
