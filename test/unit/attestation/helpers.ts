import { expect } from 'vitest';
import { AttestationError } from '../../../attestation/index.js';

/** Runs fn, asserts it throws an AttestationError (and nothing else), returns its code. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttestationError);
    return (err as AttestationError).code;
  }
  throw new Error('expected an AttestationError, nothing was thrown');
}
