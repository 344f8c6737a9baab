export * from './evaluate-admission.js';
