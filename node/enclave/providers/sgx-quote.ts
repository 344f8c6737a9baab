import { EvidenceProviderError } from './errors.js';

/**
 * Minimal local parse of an Intel SGX DCAP quote (version 3, or version 4 with
 * TEE type SGX), enough for the provider to learn MRENCLAVE and to check that
 * the quote carries the report data it asked for. It verifies NOTHING: quotes
 * are verified by the attestation library's SGX verifier on the relying side.
 * (Kept local because the attestation library had no SGX module when this was
 * written; offsets as in FORMATS.md section 2.)
 *
 *   0   u16 version, u16 attestation key type (2 = ECDSA-256-P256, 3 = ECDSA-384),
 *   4   u32 TEE type (v4: 0x00 SGX, 0x81 TDX; v3: reserved), ... 48-byte header
 *   48  REPORT BODY (384 bytes): CPUSVN @48, MISCSELECT @64, ATTRIBUTES @96
 *       (flags u64, bit 1 = DEBUG), MRENCLAVE @112, MRSIGNER @176,
 *       ISVPRODID u16 @304, ISVSVN u16 @306, REPORTDATA @368..431
 *   432 u32 signature data length, then the signature data
 */

export const SGX_QUOTE_HEADER_BYTES = 48;
export const SGX_QUOTE_MIN_BYTES = 436;

export interface SgxQuoteSummary {
  readonly version: number;
  readonly attestationKeyType: number;
  readonly mrenclave: string;
  readonly mrsigner: string;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly debug: boolean;
  readonly reportData: Uint8Array;
  /** Bytes the quote occupies (header + body + 4 + signature data). */
  readonly length: number;
}

function malformed(message: string): EvidenceProviderError {
  return new EvidenceProviderError('REPORT_MALFORMED', `SGX quote: ${message}`);
}

export function parseSgxQuote(quote: Uint8Array): SgxQuoteSummary {
  if (quote.length < SGX_QUOTE_MIN_BYTES) throw malformed(`${quote.length} bytes, at least ${SGX_QUOTE_MIN_BYTES} expected`);
  const v = new DataView(quote.buffer, quote.byteOffset, quote.byteLength);
  const version = v.getUint16(0, true);
  const attestationKeyType = v.getUint16(2, true);
  const teeType = v.getUint32(4, true);
  if (version !== 3 && !(version === 4 && teeType === 0)) throw malformed(`version ${version} / TEE type ${teeType} is not an SGX quote v3/v4`);
  if (attestationKeyType !== 2 && attestationKeyType !== 3) throw malformed(`attestation key type ${attestationKeyType} is not ECDSA`);
  const sigLen = v.getUint32(432, true);
  const length = SGX_QUOTE_MIN_BYTES + sigLen;
  if (length > quote.length) throw malformed(`signature data length ${sigLen} exceeds the ${quote.length}-byte quote`);
  const hex = (a: number, b: number): string => Buffer.from(quote.subarray(a, b)).toString('hex');
  return {
    version,
    attestationKeyType,
    mrenclave: hex(112, 144),
    mrsigner: hex(176, 208),
    isvProdId: v.getUint16(304, true),
    isvSvn: v.getUint16(306, true),
    debug: (quote[96]! & 0x02) !== 0,
    reportData: new Uint8Array(quote.subarray(368, 432)),
    length,
  };
}
