export * from './types.js';
export * from './proposer.js';
export { VoteSet, RoundState, HeightState, tallyKey, MAX_PROPOSALS_PER_ROUND } from './vote-set.js';
export { MAX_VALIDATION_WAITS, TendermintMachine } from './state-machine.js';
export * from './safety-rules.js';
export * from './evidence.js';
