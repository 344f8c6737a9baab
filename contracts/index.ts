export * from './bundle/index.js';
export * from './sandbox/index.js';
export * from './enclave/index.js';
