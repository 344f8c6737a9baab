import { signTx, type Ed25519Signer, type SignedTx } from '../../consensus/index.js';
import { rpcBatch } from './rpc.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sendAll(url: string, txs: SignedTx[], batchSize: number): Promise<string[]> {
  const hashes: string[] = [];
  for (let i = 0; i < txs.length; i += batchSize) {
    const replies = await rpcBatch(
      url,
      txs.slice(i, i + batchSize).map((tx) => ({ method: 'chain_sendTransaction', params: [tx] })),
    );
    for (const r of replies) {
      if (r.error) throw new Error(`setup transaction refused: ${r.error.message}`);
      hashes.push(r.result as string);
    }
  }
  return hashes;
}

async function waitForReceipt(url: string, hash: string): Promise<void> {
  for (;;) {
    const [reply] = await rpcBatch(url, [{ method: 'chain_getTransactionReceipt', params: [hash] }]);
    if (reply?.result) return;
    await sleep(20);
  }
}

/**
 * Mints `amount` tokens to every sender from the token owner, all through the
 * first node (the owner's nonces must reach one mempool in order), and returns
 * once every node has committed the last mint.
 */
export async function fundSenders(
  urls: string[],
  chainId: string,
  owner: Ed25519Signer,
  senders: Ed25519Signer[],
  opts: { amount: number; gasLimit: number; batchSize: number },
): Promise<void> {
  const mints = senders.map((s, i) =>
    signTx({ chainId, from: owner.publicKey, nonce: i, contract: 'token', method: 'mint', args: [s.publicKey, opts.amount], gasLimit: opts.gasLimit }, owner),
  );
  await sendSetup(urls, mints, opts.batchSize);
}

/**
 * Sends signed setup transactions of one sender (nonces in order) through the
 * first node, and returns the hash of the last once every node has committed it.
 */
export async function sendSetup(urls: string[], txs: SignedTx[], batchSize: number): Promise<string> {
  const url = urls[0]!;
  // One sender may have at most 1,000 waiting transactions: fund in waves.
  let last = '';
  for (let i = 0; i < txs.length; i += 900) {
    const hashes = await sendAll(url, txs.slice(i, i + 900), batchSize);
    last = hashes[hashes.length - 1]!;
    await waitForReceipt(url, last);
  }
  await Promise.all(urls.slice(1).map((u) => waitForReceipt(u, last)));
  return last;
}
