import { AttestationError, guarded } from '../errors.js';
import { bytesEqual, copyBytes, deepFreeze, isBytes, sha256Hex, toHex } from '../internal/bytes.js';
import type { AttestationResult } from '../result.js';
import { AMD_ARK_SPKI_SHA256, AMD_SNP_TRUST_ANCHORS } from '../roots/amd.js';
import {
  SNP_PRODUCTS,
  amdExtensions,
  certificatesFromItem,
  isP384Key,
  isSelfIssued,
  isSnpProduct,
  issuedBy,
  verifyP384,
  type AmdCertExtensions,
  type ParsedCertificate,
  type SnpProduct,
  type SnpTrustAnchor,
} from './certs.js';
import { checkHclBinding, isHclReport, parseHclReport, type HclReport } from './hcl.js';
import {
  SNP_OFFSETS,
  SNP_REPORT_SIZE,
  decodeSnpTcb,
  parseSnpReport,
  signedPart,
  snpSignatureP1363,
  type SnpReport,
  type SnpTcbLayout,
} from './report.js';
import { snpReportSummary, snpTcbSummary } from './summary.js';

/**
 * Verification of real AMD SEV-SNP evidence.
 *
 * Input forms: the raw 1184-byte report; its hex text (either case, whitespace
 * anywhere); an Azure HCL report (report at +0x20, see hcl.ts), raw or as hex.
 *
 * Procedure (the order fixes which error a given defect produces):
 *  1. options (INVALID_ARGUMENT), trust anchors (INVALID_ARGUMENT), input form
 *     (EVIDENCE_MALFORMED; HCL: also UNSUPPORTED_VERSION / UNSUPPORTED_PLATFORM),
 *     endorsements (EVIDENCE_MALFORMED). No EC (VCEK/VLEK) certificate among
 *     the endorsements → COLLATERAL_MISSING.
 *  2. Chain, per leaf candidate (first that verifies wins; otherwise the first
 *     candidate's error): leaf issued (name + signature) by an ASK/ASVK that is
 *     itself issued by a PINNED ARK (pinned = SubjectPublicKeyInfo DER equal to a
 *     trust anchor's ARK; the ARK is self-signed). An issuer with the leaf's
 *     issuer name exists but its signature fails (forged certificate) →
 *     CHAIN_INVALID; no issuer chaining to a pinned ARK (wrong product's roots,
 *     foreign root) → UNTRUSTED_ROOT; leaf key not EC P-384 → CHAIN_INVALID.
 *     A leaf under an ASK is a VCEK, under an ASVK a VLEK.
 *  3. Validity of leaf, ASK/ASVK and ARK at `now`: EVIDENCE_NOT_YET_VALID /
 *     EVIDENCE_EXPIRED.
 *  4. Report signature (ECDSA P-384/SHA-384 over report[0x000..0x29F], r/s
 *     little-endian, high-S accepted) under the leaf key → SIGNATURE_INVALID.
 *     Checked BEFORE the report is interpreted: any changed byte in the signed
 *     part, and a report checked against another chip's (or another TCB's, or
 *     another product's) VCEK, is SIGNATURE_INVALID (as a diagnostic,
 *     details.chipIdMatchesCertificate says whether CHIP_ID equals the hwID).
 *  5. Strict report parse (EVIDENCE_MALFORMED / UNSUPPORTED_VERSION /
 *     UNSUPPORTED_ALGORITHM), then the certificate's AMD extensions against the
 *     signed report, all CHAIN_INVALID: SIGNING_KEY (vcek/vlek) equals the leaf
 *     kind; product name present and equal to the anchor's product; CPUID family
 *     (v3+, unless all CPUID bytes are zero = not reported) 0x19 for
 *     Milan/Genoa, 0x1A for Turin; REPORTED_TCB equals the TCB
 *     composed from the extensions; VCEK without MASK_CHIP_KEY: hwID equals
 *     CHIP_ID (Turin: the 8-byte hwID equals CHIP_ID[0..8]).
 *  6. HCL only: REPORT_DATA = hash(runtime data) ‖ zeros → else REPORT_DATA_MISMATCH.
 */

export interface SnpVerifyOptions {
  /** Evaluation time (certificate validity). Never read from the clock. */
  readonly now: Date;
  /** VCEK or VLEK certificate (DER or PEM), optionally with/alongside the ASK/ASVK and ARK (PEM bundle or separate items). */
  readonly endorsements?: readonly Uint8Array[];
  /**
   * Trust anchors; default AMD_SNP_TRUST_ANCHORS (the embedded AMD ARKs with
   * their ASKs and ASVKs for Milan, Genoa, Turin). When given, REPLACES the
   * embedded set (tests pin their own roots; an empty array trusts nothing).
   */
  readonly trustedRoots?: readonly SnpTrustAnchor[];
}

/** Upper bound on the input size (raw: 1184 bytes, HCL: a few KiB, hex: twice that plus whitespace). */
export const MAX_SNP_EVIDENCE_BYTES = 1 << 20;

// ----------------------------------------------------------------------------------------------
// input forms

export type SnpEvidenceForm = 'raw' | 'hex' | 'hcl' | 'hcl-hex';

export interface DecodedSnpEvidence {
  readonly form: SnpEvidenceForm;
  /** The 1184-byte report. */
  readonly report: Uint8Array;
  readonly hcl?: HclReport;
}

function isHexTextByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}
function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/** Hex text (whitespace anywhere) → bytes; undefined when the input is not hex text. */
function hexText(input: Uint8Array): Uint8Array | undefined {
  let digits = 0;
  for (const b of input) {
    if (isHexTextByte(b)) digits++;
    else if (!isSpace(b)) return undefined;
  }
  if (digits === 0) return undefined;
  if (digits % 2 !== 0) throw new AttestationError('EVIDENCE_MALFORMED', 'SEV-SNP hex text has an odd number of digits');
  const clean = Buffer.from(input).toString('latin1').replace(/[\s]+/g, '');
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

/**
 * Recognises the input form and extracts the report (structure of the HCL
 * wrapper checked, the report itself not yet parsed). Throws AttestationError only.
 */
export function decodeSnpEvidence(input: Uint8Array): DecodedSnpEvidence {
  return guarded('decodeSnpEvidence', () => {
    if (!isBytes(input)) throw new AttestationError('EVIDENCE_MALFORMED', 'evidence is not a byte array');
    if (input.length > MAX_SNP_EVIDENCE_BYTES) {
      throw new AttestationError('EVIDENCE_MALFORMED', `evidence is larger than ${MAX_SNP_EVIDENCE_BYTES} bytes`);
    }
    if (isHclReport(input)) {
      const hcl = parseHclReport(input);
      return { form: 'hcl', report: hcl.report, hcl };
    }
    if (input.length === SNP_REPORT_SIZE) return { form: 'raw', report: copyBytes(input) };
    const decoded = hexText(input);
    if (decoded !== undefined) {
      if (isHclReport(decoded)) {
        const hcl = parseHclReport(decoded);
        return { form: 'hcl-hex', report: hcl.report, hcl };
      }
      if (decoded.length === SNP_REPORT_SIZE) return { form: 'hex', report: decoded };
      throw new AttestationError('EVIDENCE_MALFORMED', `SEV-SNP hex text decodes to ${decoded.length} bytes, expected ${SNP_REPORT_SIZE}`, {
        length: decoded.length,
      });
    }
    throw new AttestationError(
      'EVIDENCE_MALFORMED',
      `SEV-SNP evidence: ${input.length} bytes is neither a ${SNP_REPORT_SIZE}-byte report, its hex text, nor an Azure HCL report`,
      { length: input.length },
    );
  });
}

// ----------------------------------------------------------------------------------------------
// trust anchors

type IntermediateKind = 'ask' | 'asvk';

interface LoadedIntermediate {
  readonly cert: ParsedCertificate;
  readonly kind: IntermediateKind;
  readonly anchor: LoadedAnchor;
}

interface LoadedAnchor {
  readonly product: SnpProduct;
  readonly ark: ParsedCertificate;
  /** SHA-256 hex of the ARK SPKI DER. */
  readonly keyId: string;
  readonly intermediates: LoadedIntermediate[];
}

function anchorCert(item: unknown, what: string): ParsedCertificate {
  if (typeof item !== 'string' && !isBytes(item)) throw new AttestationError('INVALID_ARGUMENT', `${what} must be PEM text or bytes`);
  const certs = certificatesFromItem(item, 'INVALID_ARGUMENT', what);
  if (certs.length !== 1) throw new AttestationError('INVALID_ARGUMENT', `${what} must hold exactly one certificate`);
  return certs[0]!;
}

function loadAnchors(input: unknown): LoadedAnchor[] {
  if (!Array.isArray(input)) throw new AttestationError('INVALID_ARGUMENT', 'trustedRoots must be an array of SnpTrustAnchor');
  if (input.length > 64) throw new AttestationError('INVALID_ARGUMENT', 'trustedRoots: too many anchors');
  return input.map((a: unknown, i): LoadedAnchor => {
    const what = `trustedRoots[${i}]`;
    if (a === null || typeof a !== 'object') throw new AttestationError('INVALID_ARGUMENT', `${what} must be an object`);
    const anchor = a as Record<string, unknown>;
    if (!isSnpProduct(anchor['product'])) {
      throw new AttestationError('INVALID_ARGUMENT', `${what}.product must be one of ${SNP_PRODUCTS.join(', ')}`);
    }
    const ark = anchorCert(anchor['ark'], `${what}.ark`);
    if (!issuedBy(ark, ark)) {
      throw new AttestationError('INVALID_ARGUMENT', `${what}.ark is not a self-signed certificate`);
    }
    const loaded: LoadedAnchor = { product: anchor['product'], ark, keyId: sha256Hex(ark.spkiDer), intermediates: [] };
    for (const kind of ['ask', 'asvk'] as const) {
      if (anchor[kind] === undefined) continue;
      const cert = anchorCert(anchor[kind], `${what}.${kind}`);
      if (!issuedBy(cert, ark)) throw new AttestationError('INVALID_ARGUMENT', `${what}.${kind} is not issued by the ARK`);
      loaded.intermediates.push({ cert, kind, anchor: loaded });
    }
    return loaded;
  });
}

let embedded: LoadedAnchor[] | undefined;

function embeddedAnchors(): LoadedAnchor[] {
  if (embedded === undefined) {
    const loaded = loadAnchors(AMD_SNP_TRUST_ANCHORS);
    for (const a of loaded) {
      if (a.keyId !== AMD_ARK_SPKI_SHA256[a.product]) {
        throw new AttestationError('INTERNAL_ERROR', `embedded ARK-${a.product} does not carry the pinned key`);
      }
    }
    embedded = loaded;
  }
  return embedded;
}

/** Parsed caller anchors, memoised by content (bounded). Memoisation never changes a result. */
const anchorCache = new Map<string, LoadedAnchor[]>();

function anchorsFor(trustedRoots: unknown): LoadedAnchor[] {
  if (trustedRoots === undefined) return embeddedAnchors();
  if (!Array.isArray(trustedRoots)) throw new AttestationError('INVALID_ARGUMENT', 'trustedRoots must be an array of SnpTrustAnchor');
  let key: string | undefined;
  try {
    key = sha256Hex(
      JSON.stringify(
        trustedRoots.map((a: Record<string, unknown> | null) =>
          a === null || typeof a !== 'object'
            ? null
            : ['product', 'ark', 'ask', 'asvk'].map((k) => {
                const v = a[k];
                return isBytes(v) ? 'b:' + toHex(v) : typeof v === 'string' ? 's:' + v : v === undefined ? null : '?';
              }),
        ),
      ),
    );
  } catch {
    key = undefined;
  }
  const hit = key === undefined ? undefined : anchorCache.get(key);
  if (hit !== undefined) return hit;
  const loaded = loadAnchors(trustedRoots);
  if (key !== undefined) {
    if (anchorCache.size >= 32) anchorCache.delete(anchorCache.keys().next().value as string);
    anchorCache.set(key, loaded);
  }
  return loaded;
}

/** SHA-256 (hex) of the SPKI DER of each embedded ARK: the `rootKeyId` values of results chaining to them. */
export function amdRootKeyIds(): Readonly<Record<SnpProduct, string>> {
  return AMD_ARK_SPKI_SHA256;
}

// ----------------------------------------------------------------------------------------------
// endorsements and chain

function parseEndorsements(endorsements: unknown): ParsedCertificate[] {
  if (endorsements === undefined) return [];
  if (!Array.isArray(endorsements)) throw new AttestationError('INVALID_ARGUMENT', 'endorsements must be an array of byte arrays');
  if (endorsements.length > 16) throw new AttestationError('EVIDENCE_MALFORMED', 'more than 16 endorsement items');
  const out: ParsedCertificate[] = [];
  endorsements.forEach((item: unknown, i) => {
    if (!isBytes(item)) throw new AttestationError('INVALID_ARGUMENT', `endorsements[${i}] is not a byte array`);
    for (const c of certificatesFromItem(item, 'EVIDENCE_MALFORMED', `endorsements[${i}]`)) {
      if (!out.some((o) => o.digest === c.digest)) out.push(c);
    }
  });
  if (out.length > 16) throw new AttestationError('EVIDENCE_MALFORMED', 'more than 16 endorsement certificates');
  return out;
}

function intermediateKind(cert: ParsedCertificate): IntermediateKind | undefined {
  const cn = cert.subjectCn ?? '';
  if (cn.startsWith('SEV-VLEK-')) return 'asvk';
  if (cn.startsWith('SEV-')) return 'ask';
  return undefined;
}

interface Chain {
  readonly leaf: ParsedCertificate;
  readonly issuer: LoadedIntermediate;
  readonly kind: 'vcek' | 'vlek';
}

function buildChain(leaf: ParsedCertificate, anchors: readonly LoadedAnchor[], endorsed: readonly ParsedCertificate[]): Chain {
  const leafName = leaf.subjectCn ?? 'leaf';
  // Candidate issuers: the anchors' own intermediates, then endorsement intermediates
  // that are issued by a pinned ARK (an endorsed ARK is never trusted by itself).
  const issuers: LoadedIntermediate[] = anchors.flatMap((a) => a.intermediates);
  let forgedIntermediate: ParsedCertificate | undefined;
  let unanchoredIssuer = false;
  for (const cert of endorsed) {
    if (cert === leaf || isSelfIssued(cert) || !bytesEqual(cert.subjectDer, leaf.issuerDer)) continue;
    if (issuers.some((i) => i.cert.digest === cert.digest)) continue;
    const kind = intermediateKind(cert);
    const arks = anchors.filter((a) => bytesEqual(cert.issuerDer, a.ark.subjectDer));
    const anchor = arks.find((a) => issuedBy(cert, a.ark));
    if (anchor !== undefined && kind !== undefined) issuers.push({ cert, kind, anchor });
    else if (arks.length > 0) forgedIntermediate ??= cert;
    else unanchoredIssuer = true;
  }
  const named = issuers.filter((i) => bytesEqual(i.cert.subjectDer, leaf.issuerDer));
  const issuer = named.find((i) => issuedBy(leaf, i.cert));
  if (issuer === undefined) {
    if (named.length > 0) {
      throw new AttestationError('CHAIN_INVALID', `${leafName} certificate is not signed by its issuer ${named[0]!.cert.subjectCn ?? ''}`, {
        certificate: leaf.digest,
      });
    }
    if (forgedIntermediate !== undefined) {
      throw new AttestationError(
        'CHAIN_INVALID',
        `intermediate ${forgedIntermediate.subjectCn ?? ''} in the endorsements is not signed by the pinned ARK`,
        { certificate: forgedIntermediate.digest },
      );
    }
    throw new AttestationError(
      'UNTRUSTED_ROOT',
      unanchoredIssuer
        ? `${leafName} certificate chains to a root that is not a pinned AMD ARK`
        : `no pinned AMD root issues the ${leafName} certificate (issuer not among the trusted ASK/ASVK: wrong product or roots?)`,
      { certificate: leaf.digest },
    );
  }
  if (!isP384Key(leaf.publicKey)) {
    throw new AttestationError('CHAIN_INVALID', `${leafName} certificate key is not EC P-384`, { certificate: leaf.digest });
  }
  return { leaf, issuer, kind: issuer.kind === 'ask' ? 'vcek' : 'vlek' };
}

function checkValidity(chain: Chain, now: Date): { notBefore: Date; notAfter: Date } {
  const certs: Array<[string, ParsedCertificate]> = [
    [chain.kind.toUpperCase(), chain.leaf],
    [chain.issuer.kind.toUpperCase(), chain.issuer.cert],
    ['ARK', chain.issuer.anchor.ark],
  ];
  let notBefore = -Infinity;
  let notAfter = Infinity;
  for (const [name, cert] of certs) {
    const details = { certificate: name, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString(), now: now.toISOString() };
    if (now.getTime() < cert.notBefore.getTime()) {
      throw new AttestationError('EVIDENCE_NOT_YET_VALID', `${name} certificate is not valid before ${details.notBefore}`, details);
    }
    if (now.getTime() > cert.notAfter.getTime()) {
      throw new AttestationError('EVIDENCE_EXPIRED', `${name} certificate expired at ${details.notAfter}`, details);
    }
    notBefore = Math.max(notBefore, cert.notBefore.getTime());
    notAfter = Math.min(notAfter, cert.notAfter.getTime());
  }
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

// ----------------------------------------------------------------------------------------------
// certificate extensions vs report

function layoutFor(product: SnpProduct): SnpTcbLayout {
  return product === 'Turin' ? 'turin' : 'milan-genoa';
}

/** The 8 TCB_VERSION bytes the certificate attests, or a reason it cannot say. */
function certificateTcb(ext: AmdCertExtensions, product: SnpProduct): Uint8Array | string {
  const need = (v: number | undefined, name: string): number | string =>
    v === undefined ? `lacks the ${name} SPL extension` : v > 0xff ? `${name} SPL ${v} exceeds 255` : v;
  const named: Array<[number | undefined, string]> = [
    [ext.bootloader, 'bootloader'],
    [ext.tee, 'tee'],
    [ext.snp, 'snp'],
    [ext.microcode, 'microcode'],
  ];
  if (product === 'Turin') named.push([ext.fmc, 'fmc']);
  const vals: number[] = [];
  for (const [v, name] of named) {
    const r = need(v, name);
    if (typeof r === 'string') return r;
    vals.push(r);
  }
  const [bl, tee, snp, ucode, fmc] = vals as [number, number, number, number, number?];
  if (product === 'Turin') return new Uint8Array([fmc!, bl, tee, snp, 0, 0, 0, ucode]);
  const spl: number[] = [];
  for (const [v, name] of [
    [ext.spl4, 'spl4'],
    [ext.spl5, 'spl5'],
    [ext.spl6, 'spl6'],
    [ext.spl7, 'spl7'],
  ] as const) {
    if (v !== undefined && v > 0xff) return `${name} SPL ${v} exceeds 255`;
    spl.push(v ?? 0);
  }
  return new Uint8Array([bl, tee, ...spl, snp, ucode]);
}

function invalid(message: string, details: Record<string, unknown>): AttestationError {
  return new AttestationError('CHAIN_INVALID', message, details);
}

function checkExtensions(report: SnpReport, chain: Chain, ext: AmdCertExtensions): void {
  const product = chain.issuer.anchor.product;
  const cert = chain.leaf.digest;
  const signer = report.signerInfo.signingKey;
  if (signer !== chain.kind) {
    throw invalid(`report SIGNING_KEY is ${signer} but the certificate is a ${chain.kind.toUpperCase()}`, { certificate: cert });
  }
  if (ext.productName === undefined) throw invalid(`${chain.kind.toUpperCase()} certificate has no product name extension`, { certificate: cert });
  if (ext.product !== product) {
    throw invalid(`${chain.kind.toUpperCase()} certificate is for product "${ext.productName}" but chains to ARK-${product}`, {
      certificate: cert,
      productName: ext.productName,
      product,
    });
  }
  const cpuid = report.cpuid;
  if (cpuid !== undefined && (cpuid.family | cpuid.model | cpuid.stepping) !== 0) {
    const family = product === 'Turin' ? 0x1a : 0x19;
    if (cpuid.family !== family) {
      throw invalid(`report CPUID family 0x${cpuid.family.toString(16)} is not a ${product} (0x${family.toString(16)})`, {
        certificate: cert,
      });
    }
  }
  const tcb = certificateTcb(ext, product);
  if (typeof tcb === 'string') throw invalid(`${chain.kind.toUpperCase()} certificate ${tcb}`, { certificate: cert });
  const reported = report.raw.subarray(SNP_OFFSETS.reportedTcb, SNP_OFFSETS.reportedTcb + 8);
  if (!bytesEqual(reported, tcb)) {
    throw invalid('REPORTED_TCB differs from the TCB in the certificate', {
      certificate: cert,
      reportedTcb: toHex(reported),
      certificateTcb: toHex(tcb),
    });
  }
  if (chain.kind === 'vcek' && !report.signerInfo.maskChipKey) {
    if (ext.hwid === undefined) throw invalid('VCEK certificate has no hwID extension', { certificate: cert });
    const idLen = product === 'Turin' ? 8 : 64;
    if (ext.hwid.length !== idLen) throw invalid(`VCEK hwID has ${ext.hwid.length} bytes, ${product} uses ${idLen}`, { certificate: cert });
    if (!bytesEqual(report.chipId.subarray(0, idLen), ext.hwid)) {
      throw invalid('CHIP_ID differs from the VCEK hwID (certificate of another chip)', {
        certificate: cert,
        chipId: toHex(report.chipId),
        hwid: toHex(ext.hwid),
      });
    }
  }
}

/** Best-effort diagnostics for a failed signature (never throws). */
function mismatchHints(reportBytes: Uint8Array, leaf: ParsedCertificate): Record<string, unknown> {
  try {
    const ext = amdExtensions(leaf);
    const hints: Record<string, unknown> = {};
    if (ext.hwid !== undefined) {
      hints['chipIdMatchesCertificate'] = bytesEqual(reportBytes.subarray(SNP_OFFSETS.chipId, SNP_OFFSETS.chipId + ext.hwid.length), ext.hwid);
    }
    return hints;
  } catch {
    return {};
  }
}

// ----------------------------------------------------------------------------------------------
// entry point

function verifyWithLeaf(
  decoded: DecodedSnpEvidence,
  input: Uint8Array,
  leaf: ParsedCertificate,
  anchors: readonly LoadedAnchor[],
  endorsed: readonly ParsedCertificate[],
  now: Date,
): AttestationResult {
  const chain = buildChain(leaf, anchors, endorsed);
  const validity = checkValidity(chain, now);

  const reportBytes = decoded.report;
  const signature = snpSignatureP1363(reportBytes);
  if (signature === undefined || !verifyP384(leaf.publicKey, signedPart(reportBytes), signature)) {
    throw new AttestationError('SIGNATURE_INVALID', `SEV-SNP report signature does not verify under the ${chain.kind.toUpperCase()} key`, {
      certificate: leaf.digest,
      ...mismatchHints(reportBytes, leaf),
    });
  }

  const parsed = parseSnpReport(reportBytes);
  const ext = amdExtensions(leaf);
  checkExtensions(parsed, chain, ext);
  if (decoded.hcl !== undefined) checkHclBinding(decoded.hcl);

  const product = chain.issuer.anchor.product;
  const layout = layoutFor(product);
  const tcbOf = (off: number) => decodeSnpTcb(parsed.raw.subarray(off, off + 8), layout);
  const report: SnpReport = {
    ...parsed,
    currentTcb: tcbOf(SNP_OFFSETS.currentTcb),
    reportedTcb: tcbOf(SNP_OFFSETS.reportedTcb),
    committedTcb: tcbOf(SNP_OFFSETS.committedTcb),
    launchTcb: tcbOf(SNP_OFFSETS.launchTcb),
  };
  const revealsChip = chain.kind === 'vcek' && !parsed.signerInfo.maskChipKey;
  const result: AttestationResult = {
    platform: 'sev-snp',
    measurement: toHex(report.measurement),
    reportData: toHex(report.reportData),
    hostData: toHex(report.hostData),
    debug: report.policy.debug,
    tcb: snpTcbSummary(report),
    signingKey: chain.kind,
    ...(revealsChip ? { chipId: toHex(report.chipId) } : {}),
    validity: { notBefore: validity.notBefore.toISOString(), notAfter: validity.notAfter.toISOString() },
    rootKeyId: chain.issuer.anchor.keyId,
    evidenceDigest: sha256Hex(input),
    snp: snpReportSummary(report),
  };
  return deepFreeze(result);
}

/**
 * Verifies AMD SEV-SNP evidence (raw report, hex, or Azure HCL report) with its
 * VCEK/VLEK endorsement against pinned AMD roots at `options.now`, and returns
 * the common AttestationResult (platform 'sev-snp'). Throws only
 * AttestationError; see the module comment for which code each defect yields.
 */
export function verifySnpReport(input: Uint8Array, options: SnpVerifyOptions): AttestationResult {
  return guarded('verifySnpReport', () => {
    if (options === null || typeof options !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'options must be an object');
    const now: unknown = options.now;
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new AttestationError('INVALID_ARGUMENT', 'now must be a valid Date');
    const anchors = anchorsFor(options.trustedRoots);
    const decoded = decodeSnpEvidence(input);
    const endorsed = parseEndorsements(options.endorsements);
    const leaves = endorsed.filter((c) => c.publicKey.asymmetricKeyType === 'ec');
    if (leaves.length === 0) {
      throw new AttestationError('COLLATERAL_MISSING', 'no VCEK/VLEK certificate (EC P-384) among the endorsements');
    }
    let first: AttestationError | undefined;
    for (const leaf of leaves) {
      try {
        return verifyWithLeaf(decoded, input, leaf, anchors, endorsed, now);
      } catch (err) {
        if (!(err instanceof AttestationError)) throw err;
        first ??= err;
      }
    }
    throw first!;
  });
}
