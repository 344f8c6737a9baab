import { hkdfSync } from 'node:crypto';
import { join } from 'node:path';
import type { PlatformReport, TeePlatform } from '../platform.js';
import { EvidenceProviderError, errnoOf, ioError } from './errors.js';
import { Mutex, bytesEqual, hexOf, nodeProviderFs, reportDataBytes, type ProviderFs } from './fs.js';
import { parseSgxQuote, type SgxQuoteSummary } from './sgx-quote.js';

/**
 * SGX DCAP evidence under Gramine (gramine-sgx) through its /dev/attestation
 * pseudo-filesystem:
 *   1. read  attestation_type   must be "dcap" (manifest: sgx.remote_attestation = "dcap")
 *   2. write user_report_data   the 64 report-data bytes
 *   3. read  quote              Gramine asks the quoting enclave (AESM + DCAP
 *                               quote provider library) for a quote over a
 *                               report with that data
 * The quote is parsed locally (sgx-quote.ts) for MRENCLAVE; its REPORTDATA must
 * be the bytes written. /dev/attestation is one state per enclave process, so
 * requests of this instance are serialised; another component of the same
 * enclave writing user_report_data concurrently is caught by the report-data
 * check (REPORT_DATA_MISMATCH; retry).
 */

export const DEFAULT_GRAMINE_ATTESTATION_DIR = '/dev/attestation';

const MISSING =
  'Gramine /dev/attestation is not available: run the node under gramine-sgx with sgx.remote_attestation = "dcap" in the manifest';

export interface GramineSgxOptions {
  /** File operations (tests). Default node:fs. */
  readonly fs?: ProviderFs;
}

export interface SgxPlatformReport extends PlatformReport {
  readonly platform: 'sgx';
  /** The DCAP quote exactly as Gramine returned it. */
  readonly evidence: Uint8Array;
  /** Fields read from the quote (not verified). */
  readonly quote: Omit<SgxQuoteSummary, 'reportData'> & { readonly reportData: string };
  /** Content of attestation_type ("dcap"). */
  readonly attestationType: string;
}

export class GramineSgxPlatform implements TeePlatform {
  readonly name = 'sgx';
  readonly #fs: ProviderFs;
  readonly #lock = new Mutex();
  #measurement = '';

  constructor(
    readonly baseDir: string = DEFAULT_GRAMINE_ATTESTATION_DIR,
    options: GramineSgxOptions = {},
  ) {
    this.#fs = options.fs ?? nodeProviderFs;
  }

  /** MRENCLAVE of the last quote obtained ('' before the first; see probe()). */
  get measurement(): string {
    return this.#measurement;
  }

  /**
   * Gramine's MRENCLAVE-bound sealing key (/dev/attestation/keys/_sgx_mrenclave,
   * 16 bytes), stretched to 32 with HKDF for AES-256-GCM.
   */
  async sealingKey(): Promise<Uint8Array> {
    const file = join(this.baseDir, 'keys', '_sgx_mrenclave');
    let key: Uint8Array;
    try {
      key = await this.#fs.readFile(file);
    } catch (err) {
      throw new EvidenceProviderError('INTERFACE_UNAVAILABLE', `cannot read the SGX sealing key ${file}: ${(err as Error).message}`);
    }
    if (key.length !== 16) throw new EvidenceProviderError('REPORT_MALFORMED', `${file} must hold a 16-byte key`);
    return new Uint8Array(hkdfSync('sha256', key, new Uint8Array(0), 'cloister/sgx-sealing-key/v1', 32));
  }

  /** Checks the interface and learns MRENCLAVE with one quote over zero report data. */
  async probe(): Promise<{ measurement: string; attestationType: string }> {
    const r = await this.getReport('00'.repeat(64));
    return { measurement: r.measurement, attestationType: r.attestationType };
  }

  getReport(reportDataHex: string): Promise<SgxPlatformReport> {
    const reportData = reportDataBytes(reportDataHex);
    if (reportData === undefined) {
      return Promise.reject(new EvidenceProviderError('INVALID_ARGUMENT', 'report data must be 64 bytes (128 hex characters)'));
    }
    return this.#lock.run(() => this.#request(reportData));
  }

  async #request(reportData: Uint8Array): Promise<SgxPlatformReport> {
    const fs = this.#fs;
    const at = (name: string): string => join(this.baseDir, name);

    let attestationType: string;
    try {
      attestationType = Buffer.from(await fs.readFile(at('attestation_type'))).toString('utf8').replace(/\0+$/, '').trim();
    } catch (err) {
      throw ioError(err, 'reading attestation_type', at('attestation_type'), MISSING);
    }
    if (attestationType !== 'dcap') {
      throw new EvidenceProviderError(
        'UNSUPPORTED_ATTESTATION_TYPE',
        `Gramine attestation type is "${attestationType.slice(0, 32)}", not "dcap": set sgx.remote_attestation = "dcap" in the manifest ` +
          '(and run with gramine-sgx, not gramine-direct)',
        { attestationType: attestationType.slice(0, 32) },
      );
    }
    try {
      await fs.writeFile(at('user_report_data'), reportData);
    } catch (err) {
      throw ioError(err, 'writing user_report_data', at('user_report_data'), MISSING);
    }
    let raw: Uint8Array;
    try {
      raw = await fs.readFile(at('quote'));
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EINVAL' || errno === 'EIO') {
        throw new EvidenceProviderError(
          'IO_ERROR',
          `Gramine could not produce a quote (${errno}): is the AESM service running on the host with the DCAP quote provider library and a reachable PCCS?`,
          { path: at('quote'), errno },
          { cause: err },
        );
      }
      throw ioError(err, 'reading quote', at('quote'), MISSING);
    }
    const quote = parseSgxQuote(raw);
    if (!bytesEqual(quote.reportData, reportData)) {
      throw new EvidenceProviderError('REPORT_DATA_MISMATCH', 'the quote does not carry the report data written to user_report_data (stale or raced); retry', {
        expected: hexOf(reportData),
        actual: hexOf(quote.reportData),
      });
    }
    const evidence = raw.length === quote.length ? raw : raw.subarray(0, quote.length);
    this.#measurement = quote.mrenclave;
    return {
      platform: 'sgx',
      measurement: quote.mrenclave,
      evidence: new Uint8Array(evidence),
      quote: { ...quote, reportData: hexOf(quote.reportData) },
      attestationType,
    };
  }
}
