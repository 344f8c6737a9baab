import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AttestationError, parseSnpReport } from '../../../attestation/index.js';
import type { PlatformReport, TeePlatform } from '../platform.js';
import { EvidenceProviderError, errnoOf, ioError } from './errors.js';
import { bytesEqual, hexOf, nodeProviderFs, reportDataBytes, type ProviderFs } from './fs.js';
import { parseSnpCertTable, type SnpCertificate } from './snp-cert-table.js';

/**
 * SEV-SNP evidence through the Linux configfs-tsm report interface
 * (Documentation/ABI/testing/configfs-tsm[-report], kernel >= 6.7, sev-guest
 * driver), for a node running inside an SEV-SNP confidential VM.
 *
 * One request:
 *   1. mkdir <base>/<unique name>          (the kernel creates the attributes)
 *   2. read  generation                    (g0)
 *   3. write privlevel (optional, VMPL 0..3, >= privlevel_floor)   (g0 + 1)
 *   4. write inblob = the 64 report-data bytes                        (+1)
 *   5. read  outblob (the 1184-byte ATTESTATION_REPORT), provider (must be
 *      "sev_guest"), auxblob (certificate table) and manifestblob when present
 *   6. read  generation: must be g0 + number of our writes, else another writer
 *      changed the request between our writes and reads → GENERATION_MISMATCH
 *   7. rmdir the entry (always)
 * The report is parsed (attestation's parseSnpReport); its REPORT_DATA must be
 * the bytes written and, when privlevel was set, its VMPL that level.
 */

export const DEFAULT_TSM_REPORT_DIR = '/sys/kernel/config/tsm/report';
export const SEV_GUEST_PROVIDER = 'sev_guest';
/** TSM_PRIVLEVEL_MAX in include/linux/tsm.h. */
export const TSM_PRIVLEVEL_MAX = 3;

const MISSING =
  'configfs-tsm is not available: run inside an SEV-SNP guest with Linux >= 6.7, the sev-guest driver loaded, ' +
  'and configfs mounted (mount -t configfs none /sys/kernel/config)';

export interface SevSnpConfigfsOptions {
  /** VMPL to request (written to `privlevel`). Default: not written; the kernel uses privlevel_floor. */
  readonly privlevel?: number;
  /** File operations (tests). Default node:fs. */
  readonly fs?: ProviderFs;
}

export interface SnpPlatformReport extends PlatformReport {
  readonly platform: 'sev-snp';
  /** The raw 1184-byte SNP ATTESTATION_REPORT (outblob). */
  readonly evidence: Uint8Array;
  readonly report: {
    readonly version: number;
    readonly vmpl: number;
    readonly signingKey: 'vcek' | 'vlek' | 'none';
    readonly chipId: string;
    readonly reportedTcb: string;
  };
  /** The `provider` attribute ("sev_guest"). */
  readonly provider: string;
  /** `generation` after the request. */
  readonly generation: number;
  /** Raw auxblob (certificate table) when the host supplied certificates. */
  readonly auxblob?: Uint8Array;
  /** Raw manifestblob (SVSM service manifest) when present and non-empty. */
  readonly manifestblob?: Uint8Array;
  /** Certificates from auxblob (VCEK or VLEK, ASK, ARK...); empty when the host supplied none. */
  readonly certificates: readonly SnpCertificate[];
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('utf8').trim();
}

function parseCounter(bytes: Uint8Array, what: string, path: string): number {
  const t = text(bytes);
  if (!/^\d{1,15}$/.test(t)) {
    throw new EvidenceProviderError('REPORT_MALFORMED', `${path}: ${what} is not a number (${JSON.stringify(t.slice(0, 32))})`, { path });
  }
  return Number(t);
}

export class SevSnpConfigfsPlatform implements TeePlatform {
  readonly name = 'sev-snp';
  readonly #fs: ProviderFs;
  readonly #privlevel: number | undefined;
  #measurement = '';

  constructor(
    readonly baseDir: string = DEFAULT_TSM_REPORT_DIR,
    options: SevSnpConfigfsOptions = {},
  ) {
    const p = options.privlevel;
    if (p !== undefined && (!Number.isInteger(p) || p < 0 || p > TSM_PRIVLEVEL_MAX)) {
      throw new EvidenceProviderError('INVALID_ARGUMENT', `privlevel must be an integer 0..${TSM_PRIVLEVEL_MAX}`);
    }
    this.#privlevel = p;
    this.#fs = options.fs ?? nodeProviderFs;
  }

  /** MEASUREMENT of the last report obtained ('' before the first; see probe()). */
  get measurement(): string {
    return this.#measurement;
  }

  /**
   * SEV-SNP derives sealing keys with the MSG_KEY_REQ guest request
   * (/dev/sev-guest ioctl), which configfs-tsm does not expose and Node cannot
   * issue without a native addon: not supported by this provider yet.
   */
  async sealingKey(): Promise<Uint8Array> {
    throw new EvidenceProviderError('INTERFACE_UNAVAILABLE', 'sealing keys on SEV-SNP need the MSG_KEY_REQ guest request, which this provider does not issue yet');
  }

  /** Checks the interface and learns the measurement with one report over zero report data. */
  async probe(): Promise<{ measurement: string; provider: string }> {
    const r = await this.getReport('00'.repeat(64));
    return { measurement: r.measurement, provider: r.provider };
  }

  async getReport(reportDataHex: string): Promise<SnpPlatformReport> {
    const reportData = reportDataBytes(reportDataHex);
    if (reportData === undefined) throw new EvidenceProviderError('INVALID_ARGUMENT', 'report data must be 64 bytes (128 hex characters)');
    const fs = this.#fs;
    const base = this.baseDir;
    try {
      const st = await fs.stat(base);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (err) {
      throw ioError(err, 'configfs-tsm report directory', base, MISSING);
    }
    const entry = join(base, `cloister-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await fs.mkdir(entry);
    } catch (err) {
      throw ioError(err, 'creating a configfs-tsm report entry', entry, MISSING);
    }
    try {
      return await this.#request(entry, reportData);
    } finally {
      await fs.rmdir(entry).catch(() => undefined);
    }
  }

  async #read(path: string, what: string): Promise<Uint8Array> {
    try {
      return await this.#fs.readFile(path);
    } catch (err) {
      throw ioError(err, `reading ${what}`, path, MISSING);
    }
  }

  async #readOptional(path: string): Promise<Uint8Array | undefined> {
    try {
      const b = await this.#fs.readFile(path);
      return b.length === 0 ? undefined : b;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined; // attribute not present on this kernel / provider
      throw ioError(err, 'reading', path, MISSING);
    }
  }

  async #write(path: string, data: Uint8Array, what: string): Promise<void> {
    try {
      await this.#fs.writeFile(path, data);
    } catch (err) {
      if (errnoOf(err) === 'EINVAL') {
        throw new EvidenceProviderError('INVALID_ARGUMENT', `the kernel refused ${what} (${path}: EINVAL)`, { path }, { cause: err });
      }
      throw ioError(err, `writing ${what}`, path, MISSING);
    }
  }

  async #request(entry: string, reportData: Uint8Array): Promise<SnpPlatformReport> {
    const at = (name: string): string => join(entry, name);
    const g0 = parseCounter(await this.#read(at('generation'), 'generation'), 'generation', at('generation'));
    let writes = 0;
    if (this.#privlevel !== undefined) {
      const floorBytes = await this.#readOptional(at('privlevel_floor'));
      const floor = floorBytes === undefined ? 0 : parseCounter(floorBytes, 'privlevel_floor', at('privlevel_floor'));
      if (this.#privlevel < floor) {
        throw new EvidenceProviderError('INVALID_ARGUMENT', `privlevel ${this.#privlevel} is below this guest's privlevel_floor ${floor}`);
      }
      await this.#write(at('privlevel'), new TextEncoder().encode(String(this.#privlevel)), 'privlevel');
      writes++;
    }
    await this.#write(at('inblob'), reportData, 'inblob');
    writes++;

    const outblob = await this.#read(at('outblob'), 'outblob');
    const provider = text(await this.#read(at('provider'), 'provider'));
    const auxblob = await this.#readOptional(at('auxblob'));
    const manifestblob = await this.#readOptional(at('manifestblob'));
    const generation = parseCounter(await this.#read(at('generation'), 'generation'), 'generation', at('generation'));
    if (generation !== g0 + writes) {
      throw new EvidenceProviderError(
        'GENERATION_MISMATCH',
        `configfs-tsm generation is ${generation}, expected ${g0 + writes}: another writer changed the request; retry`,
        { entry, expected: g0 + writes, actual: generation },
      );
    }
    if (provider !== SEV_GUEST_PROVIDER) {
      throw new EvidenceProviderError(
        'PROVIDER_MISMATCH',
        `configfs-tsm provider is "${provider.slice(0, 64)}", not "${SEV_GUEST_PROVIDER}": this is not an SEV-SNP guest`,
        { provider: provider.slice(0, 64) },
      );
    }

    let report: ReturnType<typeof parseSnpReport>;
    try {
      report = parseSnpReport(outblob);
    } catch (err) {
      const code = err instanceof AttestationError ? err.code : 'unknown';
      throw new EvidenceProviderError('REPORT_MALFORMED', `outblob is not an SEV-SNP attestation report (${code})`, { code }, { cause: err });
    }
    if (!bytesEqual(report.reportData, reportData)) {
      throw new EvidenceProviderError('REPORT_DATA_MISMATCH', 'the SNP report does not carry the report data written to inblob', {
        expected: hexOf(reportData),
        actual: hexOf(report.reportData),
      });
    }
    if (this.#privlevel !== undefined && report.vmpl !== this.#privlevel) {
      throw new EvidenceProviderError('REPORT_DATA_MISMATCH', `the SNP report is for VMPL ${report.vmpl}, privlevel ${this.#privlevel} was requested`);
    }
    const certificates = auxblob === undefined ? [] : parseSnpCertTable(auxblob);
    const measurement = hexOf(report.measurement);
    this.#measurement = measurement;
    return {
      platform: 'sev-snp',
      measurement,
      evidence: outblob,
      report: {
        version: report.version,
        vmpl: report.vmpl,
        signingKey: report.signerInfo.signingKey,
        chipId: hexOf(report.chipId),
        reportedTcb: hexOf(report.reportedTcb.raw),
      },
      provider,
      generation,
      ...(auxblob === undefined ? {} : { auxblob }),
      ...(manifestblob === undefined ? {} : { manifestblob }),
      certificates,
    };
  }
}
