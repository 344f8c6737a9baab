import { call, METHOD_NOT_FOUND, RpcCallError } from './rpc.js';

/**
 * The "Verify" control of a transaction. For now it only fetches the
 * receipt's proof (chain_getReceiptProof); the verifier that checks it against
 * a certified header is wired in here later. Kept apart from the rest of the
 * page on purpose.
 */
export async function verifyReceiptInPage(txHash: string): Promise<string> {
  try {
    const proof = await call<unknown>('chain_getReceiptProof', [txHash]);
    return proof === null ? 'no proof for this transaction' : 'proof fetched (not verified in the page yet)';
  } catch (err) {
    if (err instanceof RpcCallError && err.code === METHOD_NOT_FOUND) return 'not available on this node';
    return `could not fetch the proof: ${(err as Error).message}`;
  }
}
