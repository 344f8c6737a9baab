// The evidence check is the enclave's (contracts/enclave/peer-evidence.ts): the host runs the same pure function for admission.
export { admissionFreshness, evaluateAdmission, type AdmissionClaim, type AdmissionContext, type AdmissionDecision, type AdmissionRefusalCode } from '../../contracts/index.js';
export * from './admission-wire.js';
export * from './admission-service.js';
