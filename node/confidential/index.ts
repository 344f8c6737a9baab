export * from './secret-service.js';
