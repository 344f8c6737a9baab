import { AttestationError, guarded } from '../errors.js';
import { copyBytes, fromHex, isAllZero, isBytes } from '../internal/bytes.js';

/**
 * Intel DCAP ECDSA quotes: version 3 (SGX) and version 4 (SGX or TDX 1.0), as
 * laid out in FORMATS.md §2.1. Integers little-endian.
 *
 * v3: header(48) ‖ ISV report body(384) ‖ u32 sig_len ‖ sig(64) ‖ att_key(64)
 *     ‖ QE report(384) ‖ QE sig(64) ‖ u16 N ‖ auth(N) ‖ u16 type ‖ u32 M ‖ cert data(M)
 * v4: header(48) ‖ body(384 SGX / 584 TDX) ‖ u32 sig_len ‖ sig(64) ‖ att_key(64)
 *     ‖ u16 type=6 ‖ u32 size ‖ [QE report(384) ‖ QE sig(64) ‖ u16 N ‖ auth(N) ‖ u16 type ‖ u32 M ‖ cert data(M)]
 * The quote signature covers header ‖ body.
 */

export const DCAP_HEADER_SIZE = 48;
export const SGX_REPORT_BODY_SIZE = 384;
export const TD10_REPORT_BODY_SIZE = 584;
export const ATT_KEY_TYPE_ECDSA_P256 = 2;
export const TEE_TYPE_SGX = 0x00;
export const TEE_TYPE_TDX = 0x81;
export const CERT_DATA_PCK_CHAIN = 5;
export const CERT_DATA_QE_REPORT = 6;
/** Intel's quoting enclave vendor id. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';
/** Largest input accepted (quotes are ~5 KB; JSON/hex wrappers about double). */
export const MAX_DCAP_INPUT_BYTES = 1 << 20;

/** Offsets inside a 384-byte SGX REPORT BODY. */
export const SGX_REPORT_OFFSETS = {
  cpuSvn: 0,
  miscSelect: 16,
  isvExtProdId: 32,
  attributes: 48,
  mrEnclave: 64,
  mrSigner: 128,
  configId: 192,
  isvProdId: 256,
  isvSvn: 258,
  configSvn: 260,
  isvFamilyId: 304,
  reportData: 320,
} as const;

/** Offsets inside a 584-byte TD 1.0 REPORT BODY. */
export const TD_REPORT_OFFSETS = {
  teeTcbSvn: 0,
  mrSeam: 16,
  mrSignerSeam: 64,
  seamAttributes: 112,
  tdAttributes: 120,
  xfam: 128,
  mrTd: 136,
  mrConfigId: 184,
  mrOwner: 232,
  mrOwnerConfig: 280,
  rtmr0: 328,
  reportData: 520,
} as const;

export interface SgxReportBody {
  readonly raw: Uint8Array;
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: number;
  readonly isvExtProdId: Uint8Array;
  /** 16 bytes: flags u64 ‖ xfrm u64. */
  readonly attributes: Uint8Array;
  /** ATTRIBUTES.FLAGS bit 1. */
  readonly debug: boolean;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly configId: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly configSvn: number;
  readonly isvFamilyId: Uint8Array;
  readonly reportData: Uint8Array;
}

export interface TdReportBody {
  readonly raw: Uint8Array;
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  /** TDATTRIBUTES bit 0 (TUD.DEBUG). */
  readonly debug: boolean;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmrs: readonly Uint8Array[];
  readonly reportData: Uint8Array;
}

export interface DcapQuote {
  readonly version: 3 | 4;
  readonly attestationKeyType: number;
  readonly teeType: 'sgx' | 'tdx';
  /** Header QE_SVN / PCE_SVN (v3 only; reserved in v4). */
  readonly qeSvn: number;
  readonly pceSvn: number;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
  /** Set for SGX quotes. */
  readonly sgxReport?: SgxReportBody;
  /** Set for TDX quotes. */
  readonly tdReport?: TdReportBody;
  /** header ‖ body: what the attestation key signed. */
  readonly signedBytes: Uint8Array;
  readonly signature: Uint8Array;
  /** Raw x ‖ y of the P-256 attestation key. */
  readonly attestationKey: Uint8Array;
  readonly qeReport: SgxReportBody;
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  readonly certificationDataType: number;
  readonly certificationData: Uint8Array;
  /** Bytes of the input the quote occupies (any rest is zero padding). */
  readonly length: number;
}

function malformed(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `DCAP quote: ${message}`, details);
}

class Cursor {
  constructor(
    readonly b: Uint8Array,
    public pos: number,
    readonly limit: number,
  ) {}
  take(n: number, what: string): Uint8Array {
    if (n < 0 || this.pos + n > this.limit) throw malformed(`truncated at ${what} (offset ${this.pos}, need ${n} bytes)`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u16(what: string): number {
    const x = this.take(2, what);
    return x[0]! | (x[1]! << 8);
  }
  u32(what: string): number {
    const x = this.take(4, what);
    return (x[0]! | (x[1]! << 8) | (x[2]! << 16)) + x[3]! * 0x1000000;
  }
}

const u16At = (b: Uint8Array, off: number): number => b[off]! | (b[off + 1]! << 8);
const u32At = (b: Uint8Array, off: number): number => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16)) + b[off + 3]! * 0x1000000;

export function parseSgxReportBody(raw: Uint8Array): SgxReportBody {
  if (raw.length !== SGX_REPORT_BODY_SIZE) throw malformed(`SGX report body is ${raw.length} bytes, expected 384`);
  const b = copyBytes(raw);
  const o = SGX_REPORT_OFFSETS;
  const f = (off: number, len: number): Uint8Array => b.subarray(off, off + len);
  return {
    raw: b,
    cpuSvn: f(o.cpuSvn, 16),
    miscSelect: u32At(b, o.miscSelect),
    isvExtProdId: f(o.isvExtProdId, 16),
    attributes: f(o.attributes, 16),
    debug: (b[o.attributes]! & 0x02) !== 0,
    mrEnclave: f(o.mrEnclave, 32),
    mrSigner: f(o.mrSigner, 32),
    configId: f(o.configId, 64),
    isvProdId: u16At(b, o.isvProdId),
    isvSvn: u16At(b, o.isvSvn),
    configSvn: u16At(b, o.configSvn),
    isvFamilyId: f(o.isvFamilyId, 16),
    reportData: f(o.reportData, 64),
  };
}

export function parseTdReportBody(raw: Uint8Array): TdReportBody {
  if (raw.length !== TD10_REPORT_BODY_SIZE) throw malformed(`TD report body is ${raw.length} bytes, expected 584`);
  const b = copyBytes(raw);
  const o = TD_REPORT_OFFSETS;
  const f = (off: number, len: number): Uint8Array => b.subarray(off, off + len);
  return {
    raw: b,
    teeTcbSvn: f(o.teeTcbSvn, 16),
    mrSeam: f(o.mrSeam, 48),
    mrSignerSeam: f(o.mrSignerSeam, 48),
    seamAttributes: f(o.seamAttributes, 8),
    tdAttributes: f(o.tdAttributes, 8),
    debug: (b[o.tdAttributes]! & 0x01) !== 0,
    xfam: f(o.xfam, 8),
    mrTd: f(o.mrTd, 48),
    mrConfigId: f(o.mrConfigId, 48),
    mrOwner: f(o.mrOwner, 48),
    mrOwnerConfig: f(o.mrOwnerConfig, 48),
    rtmrs: [0, 1, 2, 3].map((i) => f(o.rtmr0 + 48 * i, 48)),
    reportData: f(o.reportData, 64),
  };
}

/**
 * Parses a binary DCAP quote (v3 SGX, v4 SGX/TDX). Bytes after the quote are
 * allowed only if all zero (quote buffers are often zero-padded).
 */
export function parseDcapQuote(bytes: Uint8Array): DcapQuote {
  return guarded('parseDcapQuote', () => parse(bytes));
}

function parse(input: Uint8Array): DcapQuote {
  if (!isBytes(input)) throw malformed('quote is not a byte array');
  if (input.length > MAX_DCAP_INPUT_BYTES) throw malformed(`quote is larger than ${MAX_DCAP_INPUT_BYTES} bytes`);
  const b = copyBytes(input);
  if (b.length < DCAP_HEADER_SIZE) throw malformed(`${b.length} bytes is shorter than the 48-byte header`);
  const version = u16At(b, 0);
  const attestationKeyType = u16At(b, 2);
  const teeRaw = u32At(b, 4);
  if (version === 5) throw new AttestationError('UNSUPPORTED_VERSION', 'DCAP quote version 5 is not supported (versions 3 and 4 are)', { version });
  if (version !== 3 && version !== 4) throw new AttestationError('UNSUPPORTED_VERSION', `DCAP quote version ${version} is not supported`, { version });
  if (attestationKeyType !== ATT_KEY_TYPE_ECDSA_P256) {
    throw new AttestationError('UNSUPPORTED_ALGORITHM', `attestation key type ${attestationKeyType} is not ECDSA-256-with-P-256 (2)`, {
      attestationKeyType,
    });
  }
  let teeType: 'sgx' | 'tdx';
  if (teeRaw === TEE_TYPE_SGX) teeType = 'sgx';
  else if (teeRaw === TEE_TYPE_TDX && version === 4) teeType = 'tdx';
  else if (version === 3) throw malformed(`reserved header bytes 4..7 are not zero in a version 3 quote`);
  else throw new AttestationError('UNSUPPORTED_PLATFORM', `DCAP quote TEE type 0x${teeRaw.toString(16)} is not supported`, { teeType: teeRaw });
  if (version === 4 && !isAllZero(b, 8, 12)) throw malformed('reserved header bytes 8..11 are not zero in a version 4 quote');

  const bodySize = teeType === 'tdx' ? TD10_REPORT_BODY_SIZE : SGX_REPORT_BODY_SIZE;
  const c = new Cursor(b, DCAP_HEADER_SIZE, b.length);
  const body = c.take(bodySize, 'report body');
  const signedEnd = c.pos;
  const sigLen = c.u32('signature data length');
  const sigStart = c.pos;
  if (sigStart + sigLen > b.length) throw malformed(`signature data length ${sigLen} runs past the end (${b.length} bytes)`);
  const end = sigStart + sigLen;
  if (!isAllZero(b, end)) throw malformed(`${b.length - end} non-zero bytes after the quote`);
  const s = new Cursor(b, sigStart, end);
  const signature = s.take(64, 'quote signature');
  const attestationKey = s.take(64, 'attestation key');

  let qe: Cursor = s;
  if (version === 4) {
    const outerType = s.u16('certification data type');
    const outerSize = s.u32('certification data size');
    if (outerType !== CERT_DATA_QE_REPORT) {
      throw malformed(`version 4 certification data type is ${outerType}, expected 6 (QE report certification data)`);
    }
    if (s.pos + outerSize !== end) throw malformed('QE report certification data size does not match the signature data length');
    qe = new Cursor(b, s.pos, end);
  }
  const qeReportRaw = qe.take(SGX_REPORT_BODY_SIZE, 'QE report');
  const qeReportSignature = qe.take(64, 'QE report signature');
  const authSize = qe.u16('QE authentication data size');
  const qeAuthData = qe.take(authSize, 'QE authentication data');
  const certificationDataType = qe.u16('certification data type');
  const certSize = qe.u32('certification data size');
  const certificationData = qe.take(certSize, 'certification data');
  if (qe.pos !== end) throw malformed(`${end - qe.pos} unaccounted bytes inside the signature data`);

  return {
    version,
    attestationKeyType,
    teeType,
    qeSvn: version === 3 ? u16At(b, 8) : 0,
    pceSvn: version === 3 ? u16At(b, 10) : 0,
    qeVendorId: b.subarray(12, 28),
    userData: b.subarray(28, 48),
    ...(teeType === 'sgx' ? { sgxReport: parseSgxReportBody(body) } : { tdReport: parseTdReportBody(body) }),
    signedBytes: b.subarray(0, signedEnd),
    signature,
    attestationKey,
    qeReport: parseSgxReportBody(qeReportRaw),
    qeReportSignature,
    qeAuthData,
    certificationDataType,
    certificationData,
    length: end,
  };
}

// ---------------------------------------------------------------- input forms

/** Fields of the Azure attestation sample JSON (`enclave.info.*.json`) kept for cross-checks. */
export interface AzureQuoteJson {
  readonly mrEnclaveHex?: string;
  readonly mrSignerHex?: string;
  readonly enclaveHeldData?: Uint8Array;
}

export interface UnwrappedQuote {
  /** The binary quote. */
  readonly quote: Uint8Array;
  /** How the quote was given. */
  readonly container: 'raw' | 'hex' | 'azure-json';
  /** The quote carried the 16-byte Open Enclave evidence header. */
  readonly openEnclaveHeader: boolean;
  readonly azure?: AzureQuoteJson;
}

const OE_HEADER_SIZE = 16;

function stripOpenEnclave(b: Uint8Array): { quote: Uint8Array; openEnclaveHeader: boolean } {
  // OE header: u32 version = 1, u32 type (2 = remote), u64 size of what follows.
  if (b.length >= OE_HEADER_SIZE && u32At(b, 0) === 1) {
    const type = u32At(b, 4);
    if (type !== 2) throw new AttestationError('UNSUPPORTED_FORMAT', `Open Enclave evidence type ${type} is not a remote (SGX quote) report`);
    const size = u32At(b, 8) + u32At(b, 12) * 0x100000000;
    if (size !== b.length - OE_HEADER_SIZE) {
      throw new AttestationError('EVIDENCE_MALFORMED', `Open Enclave header size ${size} does not match the ${b.length - OE_HEADER_SIZE} bytes that follow`);
    }
    return { quote: b.subarray(OE_HEADER_SIZE), openEnclaveHeader: true };
  }
  return { quote: b, openEnclaveHeader: false };
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

function trimmedAscii(b: Uint8Array): string | undefined {
  let start = 0;
  let end = b.length;
  while (start < end && WS.has(b[start]!)) start++;
  while (end > start && WS.has(b[end - 1]!)) end--;
  if (start === end) return undefined;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c > 0x7e || (c < 0x20 && !WS.has(c))) return undefined;
  }
  return Buffer.from(b.subarray(start, end)).toString('latin1');
}

function hexText(text: string, what: string): Uint8Array {
  const body = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text;
  const bytes = fromHex(body);
  if (bytes === undefined || bytes.length === 0) throw new AttestationError('EVIDENCE_MALFORMED', `${what} is not even-length hex`);
  return bytes;
}

function optionalHexField(obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || fromHex(v) === undefined) throw new AttestationError('EVIDENCE_MALFORMED', `Azure quote JSON: ${key} is not hex`);
  return v.toLowerCase();
}

/**
 * Detects and unwraps the accepted input forms: raw quote bytes; hex text of a
 * quote; either of those with the Open Enclave header; the Azure sample JSON
 * `{"QuoteHex": …}`. Returns the binary quote (not yet parsed).
 */
export function unwrapDcapInput(input: Uint8Array): UnwrappedQuote {
  return guarded('unwrapDcapInput', () => unwrap(input));
}

function unwrap(input: Uint8Array): UnwrappedQuote {
  if (!isBytes(input)) throw new AttestationError('EVIDENCE_MALFORMED', 'evidence is not a byte array');
  if (input.length === 0) throw new AttestationError('EVIDENCE_MALFORMED', 'evidence is empty');
  if (input.length > MAX_DCAP_INPUT_BYTES) throw new AttestationError('EVIDENCE_MALFORMED', `evidence is larger than ${MAX_DCAP_INPUT_BYTES} bytes`);
  const text = trimmedAscii(input);
  if (text !== undefined && text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new AttestationError('EVIDENCE_MALFORMED', 'evidence looks like JSON but does not parse', undefined, { cause: err });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new AttestationError('EVIDENCE_MALFORMED', 'JSON evidence is not an object');
    const obj = parsed as Record<string, unknown>;
    const quoteHex = obj['QuoteHex'];
    if (typeof quoteHex !== 'string') throw new AttestationError('UNSUPPORTED_FORMAT', 'JSON evidence has no QuoteHex member (not an Azure SGX quote JSON)');
    const { quote, openEnclaveHeader } = stripOpenEnclave(hexText(quoteHex, 'QuoteHex'));
    const ehd = optionalHexField(obj, 'EnclaveHeldDataHex');
    const azure: { mrEnclaveHex?: string; mrSignerHex?: string; enclaveHeldData?: Uint8Array } = {};
    const mre = optionalHexField(obj, 'MrEnclaveHex');
    const mrs = optionalHexField(obj, 'MrSignerHex');
    if (mre !== undefined) azure.mrEnclaveHex = mre;
    if (mrs !== undefined) azure.mrSignerHex = mrs;
    if (ehd !== undefined) azure.enclaveHeldData = fromHex(ehd)!;
    return { quote, container: 'azure-json', openEnclaveHeader, azure };
  }
  if (text !== undefined && /^(?:0[xX])?[0-9a-fA-F\s]+$/.test(text)) {
    const { quote, openEnclaveHeader } = stripOpenEnclave(hexText(text.replace(/\s+/g, ''), 'hex evidence'));
    return { quote, container: 'hex', openEnclaveHeader };
  }
  const { quote, openEnclaveHeader } = stripOpenEnclave(input);
  return { quote: copyBytes(quote), container: 'raw', openEnclaveHeader };
}

/**
 * True when `input` is, in one of the accepted forms (raw, hex, Open Enclave
 * header, Azure JSON), something with a DCAP quote header (version 3–5,
 * ECDSA attestation key type 2 or 3). A cheap format probe for dispatchers;
 * never throws. It does not verify anything.
 */
export function isDcapEvidence(input: unknown): boolean {
  try {
    if (!isBytes(input)) return false;
    const { quote } = unwrap(input);
    if (quote.length < DCAP_HEADER_SIZE) return false;
    const version = u16At(quote, 0);
    const keyType = u16At(quote, 2);
    return version >= 3 && version <= 5 && (keyType === 2 || keyType === 3);
  } catch {
    return false;
  }
}
