import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { hkdfSync, randomBytes } from 'node:crypto';
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

/**
 * The virtual chip's secret (what a CPU keeps in fuses): sealing keys derive
 * from it. One per node, created on first use; losing it loses the node's
 * enclave identity, as replacing the CPU would.
 */
export function loadOrCreatePlatformSecret(file: string): Uint8Array {
  if (existsSync(file)) {
    const bytes = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (bytes.length !== 32) throw new Error(`${file} is not a virtual platform secret (32 bytes of hex)`);
    return new Uint8Array(bytes);
  }
  const secret = randomBytes(32);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, secret.toString('hex') + '\n', { mode: 0o600 });
  return new Uint8Array(secret);
}

/** The virtual "hardware": measures the enclave program at launch, signs its reports and derives its sealing key. */
export class VirtualPlatform implements TeePlatform {
  readonly name = 'virtual';
  constructor(
    private readonly root: VirtualRootKey,
    readonly measurement: string,
    private readonly secret: Uint8Array,
  ) {}

  /** Like SGX's MRENCLAVE-bound sealing key: another program (another measurement) gets another key. */
  async sealingKey(): Promise<Uint8Array> {
    return new Uint8Array(hkdfSync('sha256', this.secret, Buffer.from(this.measurement, 'hex'), 'cloister/virtual-sealing-key/v1', 32));
  }

  async getReport(reportDataHex: string): Promise<PlatformReport> {
    const evidence = createVirtualEvidence({
      rootPrivateKeyPem: this.root.privateKeyPem,
      measurement: Buffer.from(this.measurement, 'hex'),
      reportData: Buffer.from(reportDataHex, 'hex'),
    });
    return { platform: this.name, measurement: this.measurement, evidence };
  }
}
