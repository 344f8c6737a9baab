import { AttestationError } from './errors.js';

/**
 * The evaluation time for verifyEvidence / evaluatePolicy / tokens from a
 * time the caller was given (milliseconds since the epoch): verifiers never
 * read a clock themselves, so an enclave passes the host's time (bounded below
 * by its last committed block's) through here.
 */
export function evaluationTime(epochMillis: number): Date {
  if (!Number.isSafeInteger(epochMillis) || epochMillis < 0) {
    throw new AttestationError('INVALID_ARGUMENT', 'evaluationTime: the time must be a non-negative integer of milliseconds');
  }
  return new Date(epochMillis);
}
