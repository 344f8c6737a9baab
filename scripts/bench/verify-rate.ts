import { Ed25519Signer, generateEd25519KeyPair, verifyEd25519 } from '../../consensus/index.js';

/** ed25519 verifications per second on this core, the way nodes verify (node:crypto, cached key). */
export function measureVerifyRate(durationMs = 1000): number {
  const signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
  const message = Buffer.from('cloister benchmark message of about the size of a transaction'.repeat(4));
  const signature = signer.sign(message);
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < durationMs) {
    for (let i = 0; i < 200; i++) if (verifyEd25519(signer.publicKey, message, signature)) count++;
    now = performance.now();
  }
  return Math.round((count * 1000) / (now - start));
}
