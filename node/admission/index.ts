export * from './evaluate-admission.js';
export * from './admission-wire.js';
export * from './admission-service.js';
