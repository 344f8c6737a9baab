import { ChainError } from '../errors.js';
import { headerHash, type BlockHeader } from './block.js';

/**
 * The rules every block header obeys relative to its parent. Pure: the caller
 * passes both headers; time comes from the proposer, never from the checker's clock.
 */
export function checkChildHeader(parent: BlockHeader, child: BlockHeader): void {
  const fail = (why: string): never => {
    throw new ChainError('BLOCK_INVALID', `block ${child.height}: ${why}`);
  };
  if (child.chainId !== parent.chainId) fail('chain id differs from the parent');
  if (child.height !== parent.height + 1) fail(`height must be ${parent.height + 1}`);
  if (child.parentHash !== headerHash(parent)) fail('parentHash is not the hash of the parent header');
  if (!Number.isSafeInteger(child.time) || child.time < parent.time) fail('time is before the parent time');
}
