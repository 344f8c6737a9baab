import { expect } from 'vitest';
import { ChainError } from '../../consensus/index.js';

/** The ChainError code `fn` throws (fails the test when it throws anything else, or nothing). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChainError);
    return (err as ChainError).code;
  }
  throw new Error('expected a ChainError');
}
