import { createHash } from 'node:crypto';
import { AttestationError, guarded } from '../errors.js';
import { bytesEqual, copyBytes, deepFreeze, isAllZero, isBytes, toHex } from '../internal/bytes.js';
import { SNP_OFFSETS, SNP_REPORT_SIZE } from './report.js';

/**
 * Azure confidential VM "HCL report" (the blob the paravisor/HCL writes to the
 * vTPM NV index 0x01400001), FORMATS.md section 1.5. Little-endian u32s:
 *
 *   0x000  header (32 bytes): "HCLA", version (1 or 2), report_size
 *          (= 0x20 + 1184 + data_size), request_type, status (0), reserved[3] (0)
 *   0x020  the hardware report: SEV-SNP ATTESTATION_REPORT, 1184 bytes
 *   0x4C0  IGVM request data: data_size (= 20 + variable_data_size), version (1),
 *          report_type (2 = SNP; 3 = TVM, 4 = TDX are not supported),
 *          hash_type (1 SHA-256, 2 SHA-384, 3 SHA-512), variable_data_size
 *   0x4D4  runtime data (variable_data_size bytes): UTF-8 JSON
 *          {"keys":[{"kid":"HCLAkPub",…},{"kid":"HCLEkPub",…}],"vm-configuration":{…},"user-data":"<hex>"}
 *   ...    zero padding up to the buffer size (2600 bytes as read from the vTPM)
 *
 * Binding: REPORT_DATA = hash_type(runtime data) followed by zero bytes. The
 * SNP signature covers REPORT_DATA, so the runtime data (the vTPM attestation
 * key HCLAkPub and the guest's "user-data") is attested through it; the 32-byte
 * header is not covered by anything and is only checked for consistency.
 */

export const HCL_MAGIC = 'HCLA';
export const HCL_REPORT_OFFSET = 0x20;
export const HCL_IGVM_OFFSET = HCL_REPORT_OFFSET + SNP_REPORT_SIZE; // 0x4C0
export const HCL_IGVM_HEADER_SIZE = 20;
export const HCL_RUNTIME_DATA_OFFSET = HCL_IGVM_OFFSET + HCL_IGVM_HEADER_SIZE; // 0x4D4
export const HCL_SUPPORTED_VERSIONS = [1, 2] as const;

export type HclHashType = 'sha256' | 'sha384' | 'sha512';
const HASH_TYPES: Readonly<Record<number, { name: HclHashType; bytes: number }>> = {
  1: { name: 'sha256', bytes: 32 },
  2: { name: 'sha384', bytes: 48 },
  3: { name: 'sha512', bytes: 64 },
};

export interface HclReport {
  /** Header version (1 or 2). */
  readonly version: number;
  readonly requestType: number;
  readonly reportType: 'snp';
  /** The embedded 1184-byte SEV-SNP report (copy). */
  readonly report: Uint8Array;
  readonly hashType: HclHashType;
  /** The runtime data exactly as stored (copy). */
  readonly runtimeData: Uint8Array;
  /** hash_type digest of runtimeData, lowercase hex. */
  readonly runtimeDataDigest: string;
  /** runtimeData parsed as JSON when it is a JSON object, else absent. */
  readonly runtimeClaims?: Readonly<Record<string, unknown>>;
  /** The runtime JSON's "user-data" member (the guest's 64 bytes, hex) when present. */
  readonly userData?: string;
}

function malformed(message: string, details?: Record<string, unknown>): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `Azure HCL report: ${message}`, details);
}

/** True when the bytes start with the HCL magic "HCLA". Never throws. */
export function isHclReport(bytes: Uint8Array): boolean {
  return isBytes(bytes) && bytes.length >= 4 && bytes[0] === 0x48 && bytes[1] === 0x43 && bytes[2] === 0x4c && bytes[3] === 0x41;
}

/**
 * Parses an HCL report (structure only; nothing verified, binding not checked:
 * see checkHclBinding, which verifySnpReport applies). Throws
 * EVIDENCE_MALFORMED, UNSUPPORTED_VERSION (header version) or
 * UNSUPPORTED_PLATFORM (a TDX/TVM hardware report).
 */
export function parseHclReport(bytes: Uint8Array): HclReport {
  return guarded('parseHclReport', () => parse(bytes));
}

function parse(bytes: Uint8Array): HclReport {
  if (!isHclReport(bytes)) throw malformed('missing "HCLA" magic');
  if (bytes.length < HCL_RUNTIME_DATA_OFFSET) {
    throw malformed(`length ${bytes.length}, at least ${HCL_RUNTIME_DATA_OFFSET} expected`, { length: bytes.length });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (off: number): number => view.getUint32(off, true);
  const version = u32(4);
  if (!(HCL_SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
    throw new AttestationError('UNSUPPORTED_VERSION', `Azure HCL report header version ${version} is not supported (1, 2)`, { version });
  }
  const reportSize = u32(8);
  const requestType = u32(12);
  if (!isAllZero(bytes, 16, HCL_REPORT_OFFSET)) throw malformed('header status/reserved fields must be zero');

  const dataSize = u32(HCL_IGVM_OFFSET);
  const igvmVersion = u32(HCL_IGVM_OFFSET + 4);
  const reportType = u32(HCL_IGVM_OFFSET + 8);
  const hashCode = u32(HCL_IGVM_OFFSET + 12);
  const varSize = u32(HCL_IGVM_OFFSET + 16);
  if (reportType === 3 || reportType === 4) {
    throw new AttestationError('UNSUPPORTED_PLATFORM', `Azure HCL report carries a ${reportType === 4 ? 'TDX' : 'TVM'} report, not SEV-SNP`, {
      platform: reportType === 4 ? 'tdx' : 'tvm',
    });
  }
  if (reportType !== 2) throw malformed(`IGVM report_type ${reportType} (expected 2 = SNP)`);
  if (igvmVersion !== 1) throw malformed(`IGVM request data version ${igvmVersion} (expected 1)`);
  const hash = HASH_TYPES[hashCode];
  if (hash === undefined) throw malformed(`IGVM hash_type ${hashCode} (expected 1, 2 or 3)`);
  if (dataSize !== HCL_IGVM_HEADER_SIZE + varSize) throw malformed('IGVM data_size does not match variable_data_size');
  if (reportSize !== HCL_REPORT_OFFSET + SNP_REPORT_SIZE + dataSize) throw malformed('header report_size does not match the IGVM data size');
  const runtimeEnd = HCL_RUNTIME_DATA_OFFSET + varSize;
  if (runtimeEnd > bytes.length) throw malformed(`runtime data (${varSize} bytes) extends past the end`, { length: bytes.length });
  if (!isAllZero(bytes, runtimeEnd)) throw malformed('bytes after the runtime data must be zero padding');

  const runtimeData = copyBytes(bytes, HCL_RUNTIME_DATA_OFFSET, runtimeEnd);
  const runtimeDataDigest = createHash(hash.name).update(runtimeData).digest('hex');
  const claims = parseClaims(runtimeData);
  const userData = claims?.['user-data'];
  return deepFreeze({
    version,
    requestType,
    reportType: 'snp' as const,
    report: copyBytes(bytes, HCL_REPORT_OFFSET, HCL_IGVM_OFFSET),
    hashType: hash.name,
    runtimeData,
    runtimeDataDigest,
    ...(claims !== undefined ? { runtimeClaims: claims } : {}),
    ...(typeof userData === 'string' ? { userData } : {}),
  });
}

function parseClaims(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks the HCL binding against the embedded report's REPORT_DATA: the first
 * digest-length bytes equal hash(runtime data), the rest are zero. Otherwise
 * AttestationError('REPORT_DATA_MISMATCH') (the runtime data is not the one the
 * report attests).
 */
export function checkHclBinding(hcl: HclReport): void {
  guarded('checkHclBinding', () => {
    const reportData = hcl.report.subarray(SNP_OFFSETS.reportData, SNP_OFFSETS.reportData + 64);
    const digest = new Uint8Array(Buffer.from(hcl.runtimeDataDigest, 'hex'));
    if (!bytesEqual(reportData.subarray(0, digest.length), digest) || !isAllZero(reportData, digest.length)) {
      throw new AttestationError(
        'REPORT_DATA_MISMATCH',
        `Azure HCL report: REPORT_DATA is not ${hcl.hashType}(runtime data) followed by zeros; the runtime data is not attested`,
        { reportData: toHex(reportData), runtimeDataDigest: hcl.runtimeDataDigest },
      );
    }
  });
}
