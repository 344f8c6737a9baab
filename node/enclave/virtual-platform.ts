import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createVirtualEvidence, generateVirtualRoot } from '../../attestation/index.js';
import type { PlatformReport, TeePlatform } from './platform.js';

export interface VirtualRootKey {
  publicKeyPem: string;
  privateKeyPem: string;
}

/**
 * Loads the virtual vendor root from a file, creating it on first use. It plays
 * the part of the hardware vendor's key for development chains; the file is the
 * developer's, never part of evidence, and verifiers accept evidence signed by it
 * only when the chain's policy allows the virtual platform.
 */
export function loadOrCreateVirtualRoot(file: string): VirtualRootKey {
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as VirtualRootKey;
    if (typeof parsed.publicKeyPem !== 'string' || typeof parsed.privateKeyPem !== 'string') {
      throw new Error(`${file} is not a virtual root key file`);
    }
    return parsed;
  }
  const root = generateVirtualRoot();
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(root, null, 2) + '\n', { mode: 0o600 });
  return root;
}

/** The virtual "hardware": measures the enclave program at launch and signs its reports. */
export class VirtualPlatform implements TeePlatform {
  readonly name = 'virtual';
  constructor(
    private readonly root: VirtualRootKey,
    readonly measurement: string,
  ) {}

  async getReport(reportDataHex: string): Promise<PlatformReport> {
    const evidence = createVirtualEvidence({
      rootPrivateKeyPem: this.root.privateKeyPem,
      measurement: Buffer.from(this.measurement, 'hex'),
      reportData: Buffer.from(reportDataHex, 'hex'),
    });
    return { platform: this.name, measurement: this.measurement, evidence };
  }
}
