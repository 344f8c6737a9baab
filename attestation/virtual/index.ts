export { generateVirtualRoot, virtualRootKeyId, type VirtualRoot } from './root.js';
export {
  VIRTUAL_FAMILY_ID,
  VIRTUAL_PLATFORM,
  VIRTUAL_REPORT_VERSION,
  VIRTUAL_ROOT_CURVE,
  createVirtualEvidence,
  isVirtualEvidence,
  parseVirtualEnvelope,
  verifyVirtualEvidence,
  virtualMeasurement,
  type CreateVirtualEvidenceOptions,
  type VerifyVirtualOptions,
  type VirtualEnvelope,
  type VirtualTcb,
} from './evidence.js';
