import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The published evidence samples live OUTSIDE the repository (never copied in):
 * $CLOISTER_ATTESTATION_SAMPLES, or ../shared/attestation-samples relative to the repo root.
 */
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export const samplesDir = resolve(repoRoot, process.env['CLOISTER_ATTESTATION_SAMPLES'] ?? '../shared/attestation-samples');
export const samplesPresent = existsSync(resolve(samplesDir, 'SOURCES.md'));
export const samplesAbsentMessage = `attestation samples folder is absent (${samplesDir}); set CLOISTER_ATTESTATION_SAMPLES`;

export function sample(path: string): Uint8Array {
  return new Uint8Array(readFileSync(resolve(samplesDir, path)));
}

export function sampleText(path: string): string {
  return readFileSync(resolve(samplesDir, path), 'utf8');
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
