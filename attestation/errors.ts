/**
 * Errors of the attestation library. Callers branch on `code`, never on the message.
 *
 * Contract: every exported verifier, parser and policy function throws nothing but
 * AttestationError, whatever bytes or options it is given. An unexpected failure
 * inside the library (a bug) surfaces as code 'INTERNAL_ERROR' with the original
 * error as `cause`, never as a raw TypeError/RangeError.
 */
export const ATTESTATION_ERROR_CODES = [
  // ---- the evidence itself ----
  /** Bytes do not have the layout they claim (length, reserved fields, encoding, envelope). */
  'EVIDENCE_MALFORMED',
  /** The bytes are not any evidence format this library recognises. */
  'UNSUPPORTED_FORMAT',
  /** The format is recognised, but verification for its platform is not available (yet). Never an acceptance. */
  'UNSUPPORTED_PLATFORM',
  /** A recognised format with a version this library does not accept (e.g. SNP report version 4). */
  'UNSUPPORTED_VERSION',
  /** A signature algorithm other than the one(s) the format defines. */
  'UNSUPPORTED_ALGORITHM',
  // ---- authenticity ----
  /** The signature over the evidence does not verify under the key the chain designates. */
  'SIGNATURE_INVALID',
  /** The chain (or the virtual root) does not end in a pinned trust anchor. */
  'UNTRUSTED_ROOT',
  /** A certificate in the chain is not signed by its issuer, or is not usable for this purpose. */
  'CHAIN_INVALID',
  /** A certificate or collateral item has been revoked. */
  'REVOKED',
  /** Collateral needed for a decision (certificate, CRL, TCB info) was not supplied. */
  'COLLATERAL_MISSING',
  // ---- policy (also used as PolicyReason codes) ----
  /** `report_data` is not the value the verifier expected (binding of keys / node / chain / freshness). */
  'REPORT_DATA_MISMATCH',
  'MEASUREMENT_NOT_ALLOWED',
  'DEBUG_NOT_ALLOWED',
  'PLATFORM_NOT_ALLOWED',
  /** Virtual (development) evidence while the policy does not allow virtual platforms. */
  'VIRTUAL_NOT_ALLOWED',
  /** Evidence older than the policy's maximum age, or a certificate/token past its notAfter. */
  'EVIDENCE_EXPIRED',
  /** Evidence time or certificate notBefore lies after the evaluation time. */
  'EVIDENCE_NOT_YET_VALID',
  /** The policy limits evidence age, but no evidence time is known. */
  'FRESHNESS_UNKNOWN',
  /** TCB below the policy minimum (or a required TCB component not reported). */
  'TCB_TOO_LOW',
  'TCB_STATUS_NOT_ALLOWED',
  'HOST_DATA_NOT_ALLOWED',
  // ---- caller errors ----
  /** The policy object is not a valid AttestationPolicy. */
  'POLICY_INVALID',
  /** A function argument other than the evidence is invalid (bad root PEM, wrong field length, bad date). */
  'INVALID_ARGUMENT',
  /** A bug in this library; see `cause`. */
  'INTERNAL_ERROR',
] as const;

export type AttestationErrorCode = (typeof ATTESTATION_ERROR_CODES)[number];

export class AttestationError extends Error {
  override readonly name = 'AttestationError';
  constructor(
    readonly code: AttestationErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isAttestationError(err: unknown): err is AttestationError {
  return err instanceof AttestationError;
}

/**
 * Runs `fn`; an AttestationError passes through unchanged, anything else becomes
 * AttestationError('INTERNAL_ERROR'). Used at every public entry point so the
 * "only AttestationError" contract holds even if a library bug slips through.
 */
export function guarded<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError('INTERNAL_ERROR', `${what}: unexpected failure`, undefined, { cause: err });
  }
}
