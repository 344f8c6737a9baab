export * from './errors.js';
export * from './identity.js';
export * from './topics.js';
export * from './validation.js';
export * from './request-response.js';
export * from './network-service.js';
export * from './inbound-guard.js';
export * from './admitted-only-gossip.js';
