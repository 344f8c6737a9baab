export * from './records.js';
export * from './actions.js';
export * from './proposals.js';
export * from './errors.js';
export * from './handover.js';
