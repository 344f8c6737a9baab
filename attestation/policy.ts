import { AttestationError, guarded, type AttestationErrorCode } from './errors.js';
import { fromHex, isLowerHex, sha256Hex } from './internal/bytes.js';
import { canonicalJson } from './internal/canonical.js';
import {
  ATTESTATION_PLATFORMS,
  MEASUREMENT_BYTES,
  isAttestationPlatform,
  type AttestationPlatform,
  type AttestationResult,
} from './result.js';

/**
 * Attestation policy (first version): which verified results the consortium
 * accepts. Plain JSON so that governance can set it and the chain can hash it.
 *
 * Everything not explicitly allowed is refused: no platform, no measurement,
 * no debug and no virtual evidence unless listed/enabled.
 */
export interface AttestationPolicy {
  /** Platforms accepted. 'virtual' additionally needs allowVirtual: true. */
  readonly allowedPlatforms: readonly AttestationPlatform[];
  /** Allowed measurements per platform, hex (case-insensitive; 48 bytes for virtual/sev-snp/maa-sev-snp/tdx, 32 for sgx/maa-sgx). */
  readonly measurements: Readonly<Partial<Record<AttestationPlatform, readonly string[]>>>;
  /** Accept debuggable TEEs. Default false. */
  readonly allowDebug?: boolean;
  /** Accept virtual (development) evidence. Default false. */
  readonly allowVirtual?: boolean;
  /**
   * Minimum TCB per platform: component name → minimum value (names in
   * TcbSummary's documentation). Every named component must be reported and be
   * >= its minimum.
   */
  readonly minTcb?: Readonly<Partial<Record<AttestationPlatform, Readonly<Record<string, number>>>>>;
  /** Maximum age of the evidence at evaluation time, seconds (positive integer). */
  readonly maxEvidenceAgeSeconds?: number;
  /**
   * Allowed HOST_DATA per platform (hex; SEV-SNP's 32-byte field set by the host
   * at launch). A platform listed here must report host data in the list.
   */
  readonly hostData?: Readonly<Partial<Record<AttestationPlatform, readonly string[]>>>;
  /**
   * Allowed TCB statuses (as verifiers report them with collateral, e.g. Intel's
   * "UpToDate", "SWHardeningNeeded"). When set, evidence whose status is
   * unknown or not listed is refused.
   */
  readonly allowedTcbStatuses?: readonly string[];
}

/**
 * The canonical form of a policy: defaults filled in, platform lists sorted and
 * de-duplicated, measurements lowercase/sorted/de-duplicated, empty entries and
 * absent options omitted. Equivalent policies have equal normalized forms and
 * therefore equal policyHash values.
 */
export interface NormalizedPolicy {
  readonly allowedPlatforms: readonly AttestationPlatform[];
  readonly measurements: Readonly<Partial<Record<AttestationPlatform, readonly string[]>>>;
  readonly allowDebug: boolean;
  readonly allowVirtual: boolean;
  readonly minTcb?: Readonly<Partial<Record<AttestationPlatform, Readonly<Record<string, number>>>>>;
  readonly maxEvidenceAgeSeconds?: number;
  readonly hostData?: Readonly<Partial<Record<AttestationPlatform, readonly string[]>>>;
  readonly allowedTcbStatuses?: readonly string[];
}

export type PolicyReasonCode = Extract<
  AttestationErrorCode,
  | 'PLATFORM_NOT_ALLOWED'
  | 'VIRTUAL_NOT_ALLOWED'
  | 'MEASUREMENT_NOT_ALLOWED'
  | 'DEBUG_NOT_ALLOWED'
  | 'TCB_TOO_LOW'
  | 'TCB_STATUS_NOT_ALLOWED'
  | 'HOST_DATA_NOT_ALLOWED'
  | 'EVIDENCE_EXPIRED'
  | 'EVIDENCE_NOT_YET_VALID'
  | 'FRESHNESS_UNKNOWN'
>;

export interface PolicyReason {
  readonly code: PolicyReasonCode;
  readonly message: string;
}

export type PolicyDecision =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly reasons: readonly PolicyReason[] };

export interface EvaluatePolicyOptions {
  /** Evaluation time. */
  readonly now: Date;
  /**
   * When the evidence was produced, as the caller knows it (e.g. when it issued
   * the freshness nonce bound into report_data). Falls back to result.issuedAt.
   * Needed when the policy sets maxEvidenceAgeSeconds (else FRESHNESS_UNKNOWN).
   */
  readonly evidenceTime?: Date;
  /** Tolerance for evidence times slightly in the future, seconds. Default 0. */
  readonly maxClockSkewSeconds?: number;
}

const POLICY_KEYS = new Set([
  'allowedPlatforms',
  'measurements',
  'allowDebug',
  'allowVirtual',
  'minTcb',
  'maxEvidenceAgeSeconds',
  'hostData',
  'allowedTcbStatuses',
]);
const COMPONENT_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

function invalid(message: string): AttestationError {
  return new AttestationError('POLICY_INVALID', `attestation policy: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function platformRecord(value: unknown, name: string): Array<[AttestationPlatform, unknown]> {
  if (!isPlainObject(value)) throw invalid(`${name} must be an object keyed by platform`);
  return Object.entries(value).map(([key, v]) => {
    if (!isAttestationPlatform(key)) throw invalid(`${name} has unknown platform "${key}"`);
    return [key, v];
  });
}

function sortedUnique<T extends string>(items: readonly T[]): T[] {
  return [...new Set(items)].sort();
}

/** Validates (POLICY_INVALID) and normalizes a policy. Unknown members are rejected, so typos cannot weaken a policy. */
export function normalizePolicy(policy: unknown): NormalizedPolicy {
  return guarded('normalizePolicy', () => normalize(policy));
}

function normalize(policy: unknown): NormalizedPolicy {
  if (!isPlainObject(policy)) throw invalid('must be an object');
  for (const key of Object.keys(policy)) if (!POLICY_KEYS.has(key)) throw invalid(`unknown member "${key}"`);

  const platforms = policy['allowedPlatforms'];
  if (!Array.isArray(platforms)) throw invalid('allowedPlatforms must be an array');
  for (const p of platforms) if (!isAttestationPlatform(p)) throw invalid(`unknown platform ${JSON.stringify(p)}`);
  const allowedPlatforms = sortedUnique(platforms as AttestationPlatform[]);

  const measurements: Partial<Record<AttestationPlatform, string[]>> = {};
  for (const [platform, list] of platformRecord(policy['measurements'], 'measurements')) {
    if (!Array.isArray(list)) throw invalid(`measurements.${platform} must be an array of hex strings`);
    const size = MEASUREMENT_BYTES[platform];
    const normalized = list.map((m: unknown) => {
      const bytes = typeof m === 'string' ? fromHex(m) : undefined;
      if (bytes === undefined || bytes.length !== size) {
        throw invalid(`measurements.${platform}: ${JSON.stringify(m)} is not ${size} bytes of hex`);
      }
      return (m as string).toLowerCase();
    });
    if (normalized.length > 0) measurements[platform] = sortedUnique(normalized);
  }

  const flag = (name: string): boolean => {
    const v = policy[name];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw invalid(`${name} must be a boolean`);
    return v;
  };

  let minTcb: Partial<Record<AttestationPlatform, Record<string, number>>> | undefined;
  if (policy['minTcb'] !== undefined) {
    for (const [platform, components] of platformRecord(policy['minTcb'], 'minTcb')) {
      if (!isPlainObject(components)) throw invalid(`minTcb.${platform} must be an object of component → minimum`);
      const entries = Object.entries(components);
      for (const [name, min] of entries) {
        if (!COMPONENT_RE.test(name)) throw invalid(`minTcb.${platform}: bad component name ${JSON.stringify(name)}`);
        if (typeof min !== 'number' || !Number.isSafeInteger(min) || min < 0) {
          throw invalid(`minTcb.${platform}.${name} must be a non-negative integer`);
        }
      }
      if (entries.length === 0) continue;
      minTcb ??= {};
      minTcb[platform] = Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as Record<string, number>;
    }
  }

  const maxAge = policy['maxEvidenceAgeSeconds'];
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isSafeInteger(maxAge) || maxAge <= 0)) {
    throw invalid('maxEvidenceAgeSeconds must be a positive integer');
  }

  let hostData: Partial<Record<AttestationPlatform, string[]>> | undefined;
  if (policy['hostData'] !== undefined) {
    for (const [platform, list] of platformRecord(policy['hostData'], 'hostData')) {
      if (!Array.isArray(list) || list.length === 0) throw invalid(`hostData.${platform} must be a non-empty array of hex strings`);
      const normalized = list.map((h: unknown) => {
        if (typeof h !== 'string' || fromHex(h) === undefined || h.length === 0) throw invalid(`hostData.${platform}: ${JSON.stringify(h)} is not hex`);
        return h.toLowerCase();
      });
      hostData ??= {};
      hostData[platform] = sortedUnique(normalized);
    }
  }
  let allowedTcbStatuses: string[] | undefined;
  if (policy['allowedTcbStatuses'] !== undefined) {
    const list = policy['allowedTcbStatuses'];
    if (!Array.isArray(list) || list.some((v) => typeof v !== 'string' || !COMPONENT_RE.test(v))) {
      throw invalid('allowedTcbStatuses must be an array of status names');
    }
    allowedTcbStatuses = sortedUnique(list as string[]);
  }

  const out: {
    hostData?: Partial<Record<AttestationPlatform, string[]>>;
    allowedTcbStatuses?: string[];
    allowedPlatforms: AttestationPlatform[];
    measurements: Partial<Record<AttestationPlatform, string[]>>;
    allowDebug: boolean;
    allowVirtual: boolean;
    minTcb?: Partial<Record<AttestationPlatform, Record<string, number>>>;
    maxEvidenceAgeSeconds?: number;
  } = {
    allowedPlatforms,
    measurements: Object.fromEntries(ATTESTATION_PLATFORMS.filter((p) => measurements[p]).map((p) => [p, measurements[p]])),
    allowDebug: flag('allowDebug'),
    allowVirtual: flag('allowVirtual'),
  };
  if (minTcb !== undefined) {
    out.minTcb = Object.fromEntries(ATTESTATION_PLATFORMS.filter((p) => minTcb[p]).map((p) => [p, minTcb[p]]));
  }
  if (maxAge !== undefined) out.maxEvidenceAgeSeconds = maxAge as number;
  if (hostData !== undefined) {
    out.hostData = Object.fromEntries(ATTESTATION_PLATFORMS.filter((p) => hostData[p]).map((p) => [p, hostData[p]]));
  }
  if (allowedTcbStatuses !== undefined) out.allowedTcbStatuses = allowedTcbStatuses;
  return out;
}

/** Canonical JSON text of the normalized policy (what policyHash hashes). */
export function canonicalPolicy(policy: AttestationPolicy): string {
  return guarded('canonicalPolicy', () => canonicalJson(normalize(policy), 'POLICY_INVALID'));
}

/**
 * SHA-256 (lowercase hex) of the UTF-8 canonical JSON of the normalized policy.
 * The same text the project's canonical encoder produces for NormalizedPolicy,
 * so a block header's policy hash can be recomputed anywhere.
 */
export function policyHash(policy: AttestationPolicy): string {
  return guarded('policyHash', () => sha256Hex(canonicalJson(normalize(policy), 'POLICY_INVALID')));
}

function checkDate(value: unknown, name: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new AttestationError('INVALID_ARGUMENT', `${name} must be a valid Date`);
  }
  return value;
}

function isoDate(value: unknown, name: string): Date {
  const d = typeof value === 'string' ? new Date(value) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) throw new AttestationError('INVALID_ARGUMENT', `result ${name} is not a date`);
  return d;
}

function checkResultShape(result: AttestationResult): void {
  const ok =
    result !== null &&
    typeof result === 'object' &&
    isAttestationPlatform(result.platform) &&
    isLowerHex(result.measurement) &&
    typeof result.debug === 'boolean' &&
    result.tcb !== null &&
    typeof result.tcb === 'object' &&
    isPlainObject(result.tcb.components);
  if (!ok) throw new AttestationError('INVALID_ARGUMENT', 'evaluatePolicy: result is not an AttestationResult');
}

/**
 * Evaluates a verified result against a policy and lists EVERY reason it is
 * refused (not just the first). A malformed policy throws POLICY_INVALID; a
 * malformed result or options throw INVALID_ARGUMENT.
 */
export function evaluatePolicy(
  result: AttestationResult,
  policy: AttestationPolicy,
  options: EvaluatePolicyOptions,
): PolicyDecision {
  return guarded('evaluatePolicy', () => {
    const p = normalize(policy);
    checkResultShape(result);
    if (options === null || typeof options !== 'object') throw new AttestationError('INVALID_ARGUMENT', 'options must be an object');
    const now = checkDate(options.now, 'now');
    const skew = options.maxClockSkewSeconds ?? 0;
    if (!Number.isSafeInteger(skew) || skew < 0) {
      throw new AttestationError('INVALID_ARGUMENT', 'maxClockSkewSeconds must be a non-negative integer');
    }
    const reasons: PolicyReason[] = [];
    const add = (code: PolicyReasonCode, message: string): void => void reasons.push({ code, message });
    const platform = result.platform;

    if (!p.allowedPlatforms.includes(platform)) add('PLATFORM_NOT_ALLOWED', `platform "${platform}" is not allowed by the policy`);
    if (platform === 'virtual' && !p.allowVirtual) {
      add('VIRTUAL_NOT_ALLOWED', 'virtual (development) evidence is not allowed by the policy (allowVirtual is false)');
    }
    const allowed = p.measurements[platform] ?? [];
    if (!allowed.includes(result.measurement)) {
      add('MEASUREMENT_NOT_ALLOWED', `measurement ${result.measurement} is not in the allowed set for platform "${platform}"`);
    }
    if (result.debug && !p.allowDebug) add('DEBUG_NOT_ALLOWED', `the ${platform} TEE is debuggable and the policy does not allow debug`);

    const min = p.minTcb?.[platform];
    if (min !== undefined) {
      for (const [name, minimum] of Object.entries(min)) {
        const actual = Object.hasOwn(result.tcb.components, name) ? result.tcb.components[name] : undefined;
        if (typeof actual !== 'number') {
          add('TCB_TOO_LOW', `TCB component "${name}" is not reported by the ${platform} evidence (minimum ${minimum})`);
        } else if (actual < minimum) {
          add('TCB_TOO_LOW', `TCB component "${name}" is ${actual}, below the minimum ${minimum}`);
        }
      }
    }

    if (result.validity !== undefined) {
      const notBefore = isoDate(result.validity.notBefore, 'validity.notBefore');
      const notAfter = isoDate(result.validity.notAfter, 'validity.notAfter');
      if (now.getTime() < notBefore.getTime()) {
        add('EVIDENCE_NOT_YET_VALID', `evidence is valid from ${result.validity.notBefore}, evaluation time ${now.toISOString()}`);
      }
      if (now.getTime() > notAfter.getTime()) {
        add('EVIDENCE_EXPIRED', `evidence validity ended ${result.validity.notAfter}, evaluation time ${now.toISOString()}`);
      }
    }

    if (p.maxEvidenceAgeSeconds !== undefined) {
      const time =
        options.evidenceTime !== undefined
          ? checkDate(options.evidenceTime, 'evidenceTime')
          : result.issuedAt !== undefined
            ? isoDate(result.issuedAt, 'issuedAt')
            : undefined;
      if (time === undefined) {
        add('FRESHNESS_UNKNOWN', `the policy limits evidence age to ${p.maxEvidenceAgeSeconds} s but the evidence time is unknown`);
      } else {
        const ageMs = now.getTime() - time.getTime();
        if (ageMs < -skew * 1000) {
          add('EVIDENCE_NOT_YET_VALID', `evidence time ${time.toISOString()} is after the evaluation time ${now.toISOString()}`);
        } else if (ageMs > p.maxEvidenceAgeSeconds * 1000) {
          add('EVIDENCE_EXPIRED', `evidence is ${Math.floor(ageMs / 1000)} s old, the policy allows ${p.maxEvidenceAgeSeconds} s`);
        }
      }
    }

    const hostDataAllowed = p.hostData?.[result.platform];
    if (hostDataAllowed !== undefined) {
      const reported = result.hostData?.toLowerCase();
      if (reported === undefined || !hostDataAllowed.includes(reported)) {
        add('HOST_DATA_NOT_ALLOWED', `host data ${reported ?? '(none)'} is not in the allowed set for ${result.platform}`);
      }
    }
    if (p.allowedTcbStatuses !== undefined) {
      const status = result.tcb.status;
      if (status === undefined || !p.allowedTcbStatuses.includes(status)) {
        add(
          'TCB_STATUS_NOT_ALLOWED',
          `TCB status ${status ?? '(unknown: no collateral)'} is not one of ${p.allowedTcbStatuses.join(', ')}`,
        );
      }
    }

    return reasons.length === 0 ? { accepted: true } : { accepted: false, reasons };
  });
}

/**
 * evaluatePolicy that throws on refusal: AttestationError with the first
 * reason's code and `details.reasons` listing all of them.
 */
export function enforcePolicy(result: AttestationResult, policy: AttestationPolicy, options: EvaluatePolicyOptions): void {
  const decision = evaluatePolicy(result, policy, options);
  if (!decision.accepted) {
    const first = decision.reasons[0]!;
    throw new AttestationError(first.code, decision.reasons.map((r) => r.message).join('; '), { reasons: decision.reasons });
  }
}
