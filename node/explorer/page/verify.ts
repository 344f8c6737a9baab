import { call, METHOD_NOT_FOUND, RpcCallError } from './rpc.js';

/** The part of the verifier's browser build (dist/explorer/explorer-verifier.js, node/proofs unchanged) the page uses. */
interface Verifier {
  verifyReceiptProof(proof: unknown, genesis: unknown, options: { now: Date; skipEvidence?: boolean }): { height: number; signers: { platform: string; measurement: string }[] };
  genesisHash(genesis: unknown): string;
}

/** Loaded on the first Verify only: it is most of the page's code. Not a literal, so the page's bundle leaves it out. */
const VERIFIER_URL = '/explorer-verifier.js';
let verifier: Promise<Verifier> | undefined;

const short = (hex: string): string => `${hex.slice(0, 12)}…`;

/**
 * The "Verify" control of a transaction: its receipt proof checked in the
 * page by the same verifier `cloister receipt verify` runs (node/proofs),
 * against the genesis this node serves, whose hash the verdict shows so the
 * user compares it with the one the consortium shared. Where the browser
 * cannot check the signers' evidence (hardware X.509 chains), the verdict
 * says so and names the command that does.
 */
export async function verifyReceiptInPage(txHash: string): Promise<string> {
  let proof: unknown;
  let genesis: unknown;
  try {
    [proof, genesis] = await Promise.all([call<unknown>('chain_getReceiptProof', [txHash]), call<unknown>('chain_getGenesis')]);
  } catch (err) {
    if (err instanceof RpcCallError && err.code === METHOD_NOT_FOUND) return 'not available on this node';
    return `could not fetch the proof: ${(err as Error).message}`;
  }
  if (proof === null) return 'not committed on this node: no proof';
  const v = await (verifier ??= import(VERIFIER_URL) as Promise<Verifier>);
  const against = `against genesis ${short(v.genesisHash(genesis))} as this node serves it (compare it with yours)`;
  const now = new Date();
  try {
    const ok = v.verifyReceiptProof(proof, genesis, { now });
    const platforms = [...new Set(ok.signers.map((s) => `${s.platform} ${short(s.measurement)}`))].join(', ');
    return `verified: in block ${ok.height}, certified by ${ok.signers.length} attested validators (${platforms}), ${against}`;
  } catch (err) {
    const refused = err as { name?: string; code?: string; message: string };
    if (refused.name === 'ProofError' && refused.code !== 'ATTESTATION') return `does not verify: ${refused.code}: ${refused.message}`;
    // The evidence could not be checked here: everything else still is.
    try {
      const ok = v.verifyReceiptProof(proof, genesis, { now, skipEvidence: true });
      return `verified except the signers' evidence (${refused.message}): in block ${ok.height}, ${against}; \`cloister receipt verify\` checks the evidence too`;
    } catch (again) {
      const e = again as { code?: string; message: string };
      return `does not verify: ${e.code ?? 'ERROR'}: ${e.message}`;
    }
  }
}
