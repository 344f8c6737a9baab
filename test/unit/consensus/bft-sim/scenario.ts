import { expect } from 'vitest';
import { headerHash } from '../../../../consensus/index.js';
import { Simulator, stateRootOf, type SimOptions } from './sim.js';

/** Every scenario runs with each of these seeds. */
export const SEEDS = [11, 22, 33];

export function sim(opts: SimOptions): Simulator {
  const s = new Simulator(opts);
  s.start();
  return s;
}

/** Every committed block of every honest node passed the validity rule (execute before vote). */
export function assertValidChain(s: Simulator): void {
  for (const node of s.honestNodes()) {
    let parent = '0'.repeat(64);
    for (const { block } of node.blocks) {
      expect(block.header.parentHash).toBe(parent);
      expect(block.header.stateRoot).toBe(stateRootOf(block.header.parentHash, block.header.txRoot));
      parent = headerHash(block.header);
    }
  }
}
