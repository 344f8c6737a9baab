import { AttestationError } from '../errors.js';
import { fromHex, sha256, toHex } from '../internal/bytes.js';
import type { AttestationPlatform, TcbSummary } from '../result.js';
import { fromBase64UrlStrict } from './jws.js';

/**
 * Azure Attestation claims → the common result fields (FORMATS.md section 3).
 *
 * SGX tokens (`x-ms-attestation-type: "sgx"`):
 *   measurement = x-ms-sgx-mrenclave, debug = x-ms-sgx-is-debuggable,
 *   tcb.components.isvSvn = x-ms-sgx-svn, reportData = x-ms-sgx-report-data
 *   (64 bytes). Tokens without that claim but with runtime data (x-ms-sgx-ehd,
 *   legacy maa-ehd / aas-ehd; base64url) get reportData = SHA-256(runtime data)
 *   || 32 zero bytes, which is how MAA requires the enclave to bind runtime data
 *   (bytes 0..31) — marked `reportDataSource: 'runtime-data'`.
 *   Legacy duplicates (sgx-mrenclave, sgx-mrsigner, is-debuggable, product-id,
 *   svn, tee) are used when the x-ms-* claim is absent and must agree with it
 *   when both are present.
 * SEV-SNP tokens (`x-ms-attestation-type: "sevsnpvm"`):
 *   measurement = x-ms-sevsnpvm-launchmeasurement, reportData =
 *   x-ms-sevsnpvm-reportdata, hostData = x-ms-sevsnpvm-hostdata, debug =
 *   x-ms-sevsnpvm-is-debuggable, tcb components bootloader / tee / snp /
 *   microcode / guestSvn from the -bootloader-svn / -tee-svn / -snpfw-svn /
 *   -microcode-svn / -guestsvn claims.
 *
 * `tcb.raw` is '' for MAA tokens: they carry decoded SVNs, not the platform's
 * raw TCB encoding (the SNP byte layout depends on the CPU generation, which the
 * token does not state).
 */

export type MaaAttestationType = 'sgx' | 'sevsnpvm';

export interface MaaSgxClaims {
  /** x-ms-sgx-mrsigner, lowercase hex. */
  readonly mrsigner?: string;
  readonly productId?: number;
  readonly svn?: number;
  /** Where `reportData` came from. */
  readonly reportDataSource: 'x-ms-sgx-report-data' | 'runtime-data';
  /** The runtime data (x-ms-sgx-ehd), lowercase hex of its bytes. */
  readonly runtimeData?: string;
  /** Whether reportData[0..31] == SHA-256(runtime data); absent without runtime data. */
  readonly runtimeDataBound?: boolean;
}

export interface MaaSevSnpClaims {
  readonly familyId?: string;
  readonly imageId?: string;
  readonly idKeyDigest?: string;
  readonly authorKeyDigest?: string;
  readonly reportId?: string;
  readonly vmpl?: number;
  readonly guestSvn?: number;
  readonly migrationAllowed?: boolean;
  readonly smtAllowed?: boolean;
}

/** Token details beyond the common result (lives in `result.maa`). */
export interface MaaTokenSummary {
  /** `iss`: the MAA instance URL. */
  readonly issuer: string;
  readonly attestationType: MaaAttestationType;
  /** `kid` of the signing key (from the JWS header). */
  readonly kid: string;
  readonly jti?: string;
  /** `x-ms-ver`. */
  readonly version?: string;
  /** `x-ms-policy-hash` as in the token (base64url). */
  readonly policyHash?: string;
  /** `exp` / `nbf` as ISO-8601 UTC. */
  readonly expiresAt: string;
  readonly notBefore?: string;
  readonly sgx?: MaaSgxClaims;
  readonly sevSnp?: MaaSevSnpClaims;
}

/** Everything the claims say, before (or without) signature verification. */
export interface MappedMaaClaims {
  readonly platform: Extract<AttestationPlatform, 'maa-sgx' | 'maa-sev-snp'>;
  readonly measurement: string;
  readonly reportData: string;
  readonly hostData?: string;
  readonly debug: boolean;
  readonly tcb: TcbSummary;
  readonly issuer: string;
  /** Seconds since the epoch. */
  readonly iat: number;
  readonly exp: number;
  readonly nbf?: number;
  readonly summary: MaaTokenSummary;
}

function malformed(message: string, claim?: string): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `MAA token: ${message}`, claim === undefined ? undefined : { claim });
}

const MAX_NUMERIC_DATE = 8.64e12 / 1000; // largest Date, in seconds

function numericDate(payload: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const v = payload[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_NUMERIC_DATE) {
    throw malformed(`claim "${name}" must be a NumericDate`, name);
  }
  return v;
}

export function isoSeconds(seconds: number): string {
  return new Date(Math.floor(seconds * 1000)).toISOString();
}

/** x-ms-* claim, or its legacy duplicate; both present must agree. */
function pick(payload: Record<string, unknown>, name: string, legacy?: string): unknown {
  const a = payload[name];
  const b = legacy === undefined ? undefined : payload[legacy];
  if (a !== undefined && b !== undefined) {
    const same = typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;
    if (!same) throw malformed(`claims "${name}" and "${legacy}" disagree`, name);
  }
  return a !== undefined ? a : b;
}

function hexClaim(value: unknown, name: string, bytes: number, required: true): string;
function hexClaim(value: unknown, name: string, bytes: number, required: false): string | undefined;
function hexClaim(value: unknown, name: string, bytes: number, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  const b = typeof value === 'string' ? fromHex(value) : undefined;
  if (b === undefined || b.length !== bytes) throw malformed(`claim "${name}" must be ${bytes} bytes of hex`, name);
  return toHex(b);
}

function boolClaim(value: unknown, name: string, required: true): boolean;
function boolClaim(value: unknown, name: string, required: false): boolean | undefined;
function boolClaim(value: unknown, name: string, required: boolean): boolean | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'boolean') throw malformed(`claim "${name}" must be a boolean`, name);
  return value;
}

function uintClaim(value: unknown, name: string, max = 0xffffffff): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw malformed(`claim "${name}" must be an integer in 0..${max}`, name);
  }
  return value;
}

function stringClaim(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw malformed(`claim "${name}" must be a string`, name);
  return value;
}

function attestationType(payload: Record<string, unknown>): MaaAttestationType {
  const type = payload['x-ms-attestation-type'] ?? (payload['tee'] === 'sgx' ? 'sgx' : undefined);
  if (type === undefined) throw malformed('no x-ms-attestation-type claim', 'x-ms-attestation-type');
  if (typeof type !== 'string') throw malformed('x-ms-attestation-type must be a string', 'x-ms-attestation-type');
  if (type === 'sgx' || type === 'sevsnpvm') return type;
  throw new AttestationError(
    'UNSUPPORTED_PLATFORM',
    `MAA token attestation type "${type.slice(0, 64)}" is not supported (supported: sgx, sevsnpvm)`,
    { platform: 'maa', attestationType: type.slice(0, 64) },
  );
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Maps a (verified or not) MAA payload. Throws EVIDENCE_MALFORMED / UNSUPPORTED_PLATFORM. */
export function mapMaaClaims(payload: Record<string, unknown>, kid: string): MappedMaaClaims {
  const issuer = payload['iss'];
  if (typeof issuer !== 'string' || issuer.length === 0) throw malformed('no "iss" claim', 'iss');
  const exp = numericDate(payload, 'exp', true)!;
  const iat = numericDate(payload, 'iat', true)!;
  const nbf = numericDate(payload, 'nbf', false);
  const type = attestationType(payload);
  const common = {
    issuer,
    attestationType: type,
    kid,
    jti: stringClaim(payload['jti'], 'jti'),
    version: stringClaim(payload['x-ms-ver'], 'x-ms-ver'),
    policyHash: stringClaim(payload['x-ms-policy-hash'], 'x-ms-policy-hash'),
    expiresAt: isoSeconds(exp),
    notBefore: nbf === undefined ? undefined : isoSeconds(nbf),
  };

  if (type === 'sgx') {
    const measurement = hexClaim(pick(payload, 'x-ms-sgx-mrenclave', 'sgx-mrenclave'), 'x-ms-sgx-mrenclave', 32, true);
    const mrsigner = hexClaim(pick(payload, 'x-ms-sgx-mrsigner', 'sgx-mrsigner'), 'x-ms-sgx-mrsigner', 32, false);
    const debug = boolClaim(pick(payload, 'x-ms-sgx-is-debuggable', 'is-debuggable'), 'x-ms-sgx-is-debuggable', true);
    const productId = uintClaim(pick(payload, 'x-ms-sgx-product-id', 'product-id'), 'x-ms-sgx-product-id', 0xffff);
    const svn = uintClaim(pick(payload, 'x-ms-sgx-svn', 'svn'), 'x-ms-sgx-svn', 0xffff);
    const ehdText = pick(payload, 'x-ms-sgx-ehd', 'maa-ehd') ?? payload['aas-ehd'];
    let runtime: Uint8Array | undefined;
    if (ehdText !== undefined) {
      runtime = typeof ehdText === 'string' ? fromBase64UrlStrict(ehdText) : undefined;
      if (runtime === undefined) throw malformed('claim "x-ms-sgx-ehd" must be base64url', 'x-ms-sgx-ehd');
    }
    const rdClaim = hexClaim(payload['x-ms-sgx-report-data'], 'x-ms-sgx-report-data', 64, false);
    let reportData: string;
    let reportDataSource: MaaSgxClaims['reportDataSource'];
    if (rdClaim !== undefined) {
      reportData = rdClaim;
      reportDataSource = 'x-ms-sgx-report-data';
    } else if (runtime !== undefined) {
      reportData = toHex(sha256(runtime)) + '00'.repeat(32);
      reportDataSource = 'runtime-data';
    } else {
      throw malformed('neither x-ms-sgx-report-data nor runtime data (x-ms-sgx-ehd) is present', 'x-ms-sgx-report-data');
    }
    const sgx: MaaSgxClaims = withoutUndefined({
      mrsigner,
      productId,
      svn,
      reportDataSource,
      runtimeData: runtime === undefined ? undefined : toHex(runtime),
      runtimeDataBound: runtime === undefined ? undefined : reportData.slice(0, 64) === toHex(sha256(runtime)),
    });
    return {
      platform: 'maa-sgx',
      measurement,
      reportData,
      debug,
      tcb: { components: svn === undefined ? {} : { isvSvn: svn }, raw: '' },
      issuer,
      iat,
      exp,
      ...(nbf === undefined ? {} : { nbf }),
      summary: withoutUndefined({ ...common, sgx }),
    };
  }

  const p = 'x-ms-sevsnpvm-';
  const measurement = hexClaim(payload[`${p}launchmeasurement`], `${p}launchmeasurement`, 48, true);
  const reportData = hexClaim(payload[`${p}reportdata`], `${p}reportdata`, 64, true);
  const hostData = hexClaim(payload[`${p}hostdata`], `${p}hostdata`, 32, false);
  const debug = boolClaim(payload[`${p}is-debuggable`], `${p}is-debuggable`, true);
  const components: Record<string, number> = {};
  for (const [name, claim] of [
    ['bootloader', 'bootloader-svn'],
    ['tee', 'tee-svn'],
    ['snp', 'snpfw-svn'],
    ['microcode', 'microcode-svn'],
    ['guestSvn', 'guestsvn'],
  ] as const) {
    const v = uintClaim(payload[p + claim], p + claim, name === 'guestSvn' ? 0xffffffff : 0xff);
    if (v !== undefined) components[name] = v;
  }
  const sevSnp: MaaSevSnpClaims = withoutUndefined({
    familyId: hexClaim(payload[`${p}familyId`], `${p}familyId`, 16, false),
    imageId: hexClaim(payload[`${p}imageId`], `${p}imageId`, 16, false),
    idKeyDigest: hexClaim(payload[`${p}idkeydigest`], `${p}idkeydigest`, 48, false),
    authorKeyDigest: hexClaim(payload[`${p}authorkeydigest`], `${p}authorkeydigest`, 48, false),
    reportId: hexClaim(payload[`${p}reportid`], `${p}reportid`, 32, false),
    vmpl: uintClaim(payload[`${p}vmpl`], `${p}vmpl`, 3),
    guestSvn: components['guestSvn'],
    migrationAllowed: boolClaim(payload[`${p}migration-allowed`], `${p}migration-allowed`, false),
    smtAllowed: boolClaim(payload[`${p}smt-allowed`], `${p}smt-allowed`, false),
  });
  return {
    platform: 'maa-sev-snp',
    measurement,
    reportData,
    ...(hostData === undefined ? {} : { hostData }),
    debug,
    tcb: { components, raw: '' },
    issuer,
    iat,
    exp,
    ...(nbf === undefined ? {} : { nbf }),
    summary: withoutUndefined({ ...common, sevSnp }),
  };
}
