export { ContractError, isContractError, type ContractErrorCode } from './errors.js';
export {
  parseManifest,
  callableMethod,
  INIT_METHOD,
  MAX_DESCRIPTION_LENGTH,
  MAX_METHODS,
  RESERVED_CONTRACT_NAMES,
  type ContractManifest,
  type ContractMethod,
} from './manifest.js';
export {
  parseBundle,
  validateCode,
  bundleMeasurement,
  loadBundleFromDir,
  MANIFEST_FILE,
  CODE_FILE,
  MAX_CODE_BYTES,
  MAX_MANIFEST_BYTES,
  type ContractBundle,
} from './bundle.js';
