import { AttestationError, guarded } from './errors.js';
import { bytesEqual, fromHex, isBytes, sha512, toHex } from './internal/bytes.js';
import { canonicalJson } from './internal/canonical.js';
import type { AttestationResult } from './result.js';

/**
 * report_data binding: the 64 bytes an enclave puts into its evidence so that
 * the evidence speaks for exactly these enclave public keys, on this chain, for
 * this node, at this freshness value (a verifier-chosen nonce, or e.g. a recent
 * block hash). Evidence replayed for another key, node, chain or freshness value
 * fails checkReportData.
 *
 * report_data = SHA-512( UTF-8( canonicalJson({
 *   "chainId": chainId, "domain": "cloister/report-data/v1", "freshness": freshness,
 *   "nodeId": nodeId, "publicKeys": { name: lowercase-hex, ... } }) ) )
 *
 * canonicalJson: keys sorted by UTF-16 code units, no whitespace, strings as
 * JSON.stringify writes them (the project's canonical encoding). JSON strings are
 * self-delimiting, so the encoding is unambiguous; the domain tag separates it
 * from every other hash in the system. Key bytes are given as hex; hex case does
 * not matter (it is lowercased), the key bytes do.
 */

export const REPORT_DATA_DOMAIN = 'cloister/report-data/v1';
export const REPORT_DATA_BYTES = 64;

export interface ReportDataInput {
  /** Enclave public keys by name (e.g. { vote: "…", encryption: "…" }), hex of the key bytes. At least one. */
  readonly publicKeys: Readonly<Record<string, string>>;
  readonly chainId: string;
  readonly nodeId: string;
  /** Verifier-chosen nonce or another freshness value; non-empty. */
  readonly freshness: string;
}

function badArg(message: string): AttestationError {
  return new AttestationError('INVALID_ARGUMENT', `reportDataFor: ${message}`);
}

/** The exact bytes that are hashed (exposed for auditors and cross-language test vectors). */
export function reportDataPreimage(input: ReportDataInput): Uint8Array {
  return guarded('reportDataPreimage', () => {
    if (input === null || typeof input !== 'object') throw badArg('input must be an object');
    const { publicKeys, chainId, nodeId, freshness } = input;
    for (const [name, v] of [
      ['chainId', chainId],
      ['nodeId', nodeId],
      ['freshness', freshness],
    ] as const) {
      if (typeof v !== 'string' || v.length === 0) throw badArg(`${name} must be a non-empty string`);
    }
    if (publicKeys === null || typeof publicKeys !== 'object' || Array.isArray(publicKeys)) {
      throw badArg('publicKeys must be an object of name → hex');
    }
    const entries = Object.entries(publicKeys);
    if (entries.length === 0) throw badArg('publicKeys must name at least one key');
    const keys: Array<[string, string]> = [];
    for (const [name, hex] of entries) {
      if (name.length === 0) throw badArg('public key names must be non-empty');
      if (typeof hex !== 'string' || hex.length === 0 || fromHex(hex) === undefined) {
        throw badArg(`public key "${name}" must be non-empty hex`);
      }
      keys.push([name, hex.toLowerCase()]);
    }
    const text = canonicalJson({
      chainId,
      domain: REPORT_DATA_DOMAIN,
      freshness,
      nodeId,
      publicKeys: Object.fromEntries(keys),
    });
    return new Uint8Array(Buffer.from(text, 'utf8'));
  });
}

/** The 64 bytes of report_data for these keys, chain, node and freshness value. */
export function reportDataFor(input: ReportDataInput): Uint8Array {
  return guarded('reportDataFor', () => sha512(reportDataPreimage(input)));
}

/**
 * Throws AttestationError('REPORT_DATA_MISMATCH') unless the verified result's
 * report_data equals `expected` (64 bytes, or its hex).
 */
export function checkReportData(result: Pick<AttestationResult, 'reportData'>, expected: Uint8Array | string): void {
  guarded('checkReportData', () => {
    const want = typeof expected === 'string' ? fromHex(expected) : isBytes(expected) ? expected : undefined;
    if (want === undefined || want.length !== REPORT_DATA_BYTES) {
      throw new AttestationError('INVALID_ARGUMENT', `checkReportData: expected must be ${REPORT_DATA_BYTES} bytes (or their hex)`);
    }
    const got = typeof result?.reportData === 'string' ? fromHex(result.reportData) : undefined;
    if (got === undefined || !bytesEqual(got, want)) {
      throw new AttestationError('REPORT_DATA_MISMATCH', 'evidence report_data does not bind the expected keys/chain/node/freshness', {
        expected: toHex(want),
        actual: typeof result?.reportData === 'string' ? result.reportData : null,
      });
    }
  });
}
