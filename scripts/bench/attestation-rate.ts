import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  createVirtualEvidence,
  generateVirtualRoot,
  verifyEvidence,
  type VerifyOptions,
} from '../../attestation/index.js';

/**
 * How many pieces of evidence one core verifies per second, per format, without
 * the result cache (every verification does the full signature work; parsed
 * certificates are reused, as a long-running node would).
 */
function rate(evidence: Uint8Array, options: VerifyOptions, durationMs: number): number {
  verifyEvidence(evidence, options); // warm: parse certificates once
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < durationMs) {
    for (let i = 0; i < 10; i++) verifyEvidence(evidence, options);
    count += 10;
    now = performance.now();
  }
  return Math.round((count * 1000) / (now - start));
}

export interface AttestationRates {
  virtualPerSec: number;
  snpPerSec: number | null;
  sgxPerSec: number | null;
  samples: string;
}

export function measureAttestationRates(samplesDir: string, durationMs = 1000): AttestationRates {
  const root = generateVirtualRoot();
  const virtual = createVirtualEvidence({
    rootPrivateKeyPem: root.privateKeyPem,
    measurement: new Uint8Array(48),
    reportData: new Uint8Array(64),
  });
  const at = new Date('2025-06-01T00:00:00Z');
  const out: AttestationRates = {
    virtualPerSec: rate(virtual, { now: at, trustedRoots: { virtual: [root.publicKeyPem] } }, durationMs),
    snpPerSec: null,
    sgxPerSec: null,
    samples: samplesDir,
  };
  const file = (p: string): Uint8Array => new Uint8Array(readFileSync(resolve(samplesDir, p)));
  if (existsSync(resolve(samplesDir, 'SOURCES.md'))) {
    out.snpPerSec = rate(
      file('amd/snp/gsg_milan_v2_report.bin'),
      { now: at, trustedRoots: {}, endorsements: [file('amd/snp/gsg_milan_v2_vcek.der')] },
      durationMs,
    );
    out.sgxPerSec = rate(file('intel/sgx/trustee_occlum_quote_v3.dat'), { now: at, trustedRoots: {} }, durationMs);
  }
  return out;
}
