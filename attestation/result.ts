/**
 * The common result of every evidence verifier: the contract between verifiers
 * (virtual, SEV-SNP, SGX DCAP, TDX, Azure Attestation) and the policy.
 *
 * A result exists only for evidence whose signature chain verified to a pinned
 * trust anchor. It says WHAT the evidence proves, not whether that is acceptable:
 * acceptance is `evaluatePolicy(result, policy, ...)`, and the key/freshness
 * binding is `checkReportData(result, reportDataFor(...))`.
 *
 * Results are plain JSON data (strings, numbers, booleans; byte strings as
 * lowercase hex) so they can be logged, cached, sent over RPC and stored with a
 * ledger; verifiers return them deep-frozen.
 */

export const ATTESTATION_PLATFORMS = ['virtual', 'sev-snp', 'sgx', 'tdx', 'maa-sgx', 'maa-sev-snp'] as const;

/**
 * - `virtual`: development/CI evidence signed by a locally generated virtual vendor root.
 * - `sev-snp`: AMD SEV-SNP report, VCEK/VLEK chain to an AMD ARK.
 * - `sgx` / `tdx`: Intel DCAP quote, PCK chain to the Intel SGX Root CA.
 * - `maa-sgx` / `maa-sev-snp`: Azure Attestation JWT about an SGX enclave / SNP VM.
 */
export type AttestationPlatform = (typeof ATTESTATION_PLATFORMS)[number];

export function isAttestationPlatform(value: unknown): value is AttestationPlatform {
  return typeof value === 'string' && (ATTESTATION_PLATFORMS as readonly string[]).includes(value);
}

/** Byte length of `measurement` per platform (SNP launch digest / MRTD: 48, MRENCLAVE: 32). */
export const MEASUREMENT_BYTES: Readonly<Record<AttestationPlatform, number>> = Object.freeze({
  virtual: 48,
  'sev-snp': 48,
  'maa-sev-snp': 48,
  tdx: 48,
  sgx: 32,
  'maa-sgx': 32,
});

/** Which key signed the evidence itself (the leaf of the chain). */
export type SigningKeyKind = 'vcek' | 'vlek' | 'pck' | 'maa' | 'virtual-root';

/** Intel TCB status names (TCB info collateral). */
export type TcbStatus =
  | 'UpToDate'
  | 'SWHardeningNeeded'
  | 'ConfigurationNeeded'
  | 'ConfigurationAndSWHardeningNeeded'
  | 'OutOfDate'
  | 'OutOfDateConfigurationNeeded'
  | 'Revoked';

/**
 * TCB in a comparable form. `components` holds named security version numbers;
 * a policy minimum for a platform names some of them and is met when every named
 * component is present and >= the minimum (component-wise, never lexicographic).
 *
 * Component names per platform (the contract for `AttestationPolicy.minTcb`):
 * - virtual / sev-snp / maa-sev-snp: `bootloader`, `tee`, `snp`, `microcode`,
 *   `fmc` (Turin only), `guestSvn`. The platform values are the REPORTED_TCB
 *   (the TCB the VCEK is derived from and that the VCEK certificate attests).
 * - sgx / maa-sgx: `isvSvn`, `pceSvn`, `cpuSvn0`..`cpuSvn15`, `qeSvn` (next issue).
 * - tdx: `teeTcbSvn0`..`teeTcbSvn15`, `pceSvn`, `qeSvn` (next issue).
 */
export interface TcbSummary {
  readonly components: Readonly<Record<string, number>>;
  /** The platform's raw TCB encoding, hex (SNP: the 8 REPORTED_TCB bytes as stored in the report). */
  readonly raw: string;
  /** Vendor TCB verdict when collateral was evaluated (Intel TCB info); absent otherwise. */
  readonly status?: TcbStatus;
  readonly advisoryIds?: readonly string[];
}

/** SEV-SNP report fields not covered by the common part (virtual evidence uses the same layout). */
export interface SnpReportSummary {
  readonly version: number;
  readonly guestSvn: number;
  /** Guest policy u64 as a hex number, e.g. "0x3001f". */
  readonly policy: string;
  readonly migrateMa: boolean;
  readonly smt: boolean;
  readonly vmpl: number;
  readonly signingKey: 'vcek' | 'vlek' | 'none';
  readonly maskChipKey: boolean;
  readonly authorKeyEn: boolean;
  /** PLATFORM_INFO u64 as a hex number. */
  readonly platformInfo: string;
  readonly familyId: string;
  readonly imageId: string;
  readonly idKeyDigest: string;
  readonly authorKeyDigest: string;
  readonly reportId: string;
  readonly reportIdMa: string;
  /** Byte layout used to decode the TCB values. */
  readonly tcbLayout: 'milan-genoa' | 'turin';
  /** Raw 8-byte TCB_VERSION values, hex. */
  readonly currentTcb: string;
  readonly reportedTcb: string;
  readonly committedTcb: string;
  readonly launchTcb: string;
  /** CPUID family/model/stepping (report version 3 and later). */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
}

export interface AttestationResult {
  readonly platform: AttestationPlatform;
  /** The enclave/VM measurement, lowercase hex (SNP MEASUREMENT, SGX MRENCLAVE, TDX MRTD; virtual: SHA-384 of the enclave program). */
  readonly measurement: string;
  /** The 64 bytes the enclave bound into the evidence, lowercase hex. */
  readonly reportData: string;
  /** Host-supplied launch data (SNP HOST_DATA), lowercase hex, where the platform has it. */
  readonly hostData?: string;
  /** True when the platform reports a debuggable TEE (SNP policy bit 19, SGX ATTRIBUTES.DEBUG). */
  readonly debug: boolean;
  readonly tcb: TcbSummary;
  readonly signingKey: SigningKeyKind;
  /** Identifier of the physical chip, lowercase hex, when the evidence reveals it (SNP CHIP_ID for VCEK, not masked). */
  readonly chipId?: string;
  /**
   * Intersection of the validity periods of everything the verification relied
   * on (certificates, token nbf/exp), ISO-8601 UTC. Absent when nothing expires
   * (virtual evidence: its root is a bare key).
   */
  readonly validity?: { readonly notBefore: string; readonly notAfter: string };
  /** Time the evidence itself states it was produced (e.g. MAA `iat`), ISO-8601 UTC; absent for hardware reports. */
  readonly issuedAt?: string;
  /** SHA-256 (lowercase hex) of the SPKI DER of the pinned trust anchor the chain ended at. */
  readonly rootKeyId: string;
  /** SHA-256 (lowercase hex) of the exact evidence bytes passed to the verifier (for virtual evidence: the whole envelope). */
  readonly evidenceDigest: string;
  /** SEV-SNP-layout details (platforms virtual, sev-snp). */
  readonly snp?: SnpReportSummary;
}
