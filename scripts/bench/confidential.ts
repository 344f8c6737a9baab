import { join } from 'node:path';
import { txHash, type Ed25519Signer, type Genesis, type SignedTx } from '../../consensus/index.js';
import { CloisterClient, openReceipt, RpcError, SealingSession, sealTransaction, type ReceiptView, type VerifiedEncryptionKey } from '../../node/client/index.js';
import { sendSetup } from './fund.js';
import { rpcCall } from './rpc.js';

/** The confidential token the confidential benchmark drives (token's transfer, state sealed). */
export const PRIVATE_TOKEN = 'private-token';

export function privateTokenDir(root: string): string {
  return join(root, 'scripts', 'bench', 'contracts', PRIVATE_TOKEN);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The network encryption key, verified against the genesis, once every node
 * answers it: the chain commits its consortium secret in its first blocks, and
 * on a devnet each enclave then receives it from a peer after attestation; a
 * node that does not hold it yet cannot admit a sealed transaction
 * (SECRET_UNAVAILABLE). Every node must offer the same key.
 */
export async function waitForEncryptionKey(urls: string[], genesis: Genesis, log: (msg: string) => void, timeoutMs = 30_000): Promise<VerifiedEncryptionKey> {
  const deadline = performance.now() + timeoutMs;
  const keys = await Promise.all(
    urls.map(async (url) => {
      const client = new CloisterClient(url);
      for (;;) {
        try {
          return await client.encryptionKey(genesis);
        } catch (err) {
          const unavailable = err instanceof RpcError && err.chainCode === 'SECRET_UNAVAILABLE';
          if (!unavailable || performance.now() > deadline) {
            throw new Error(`${url} did not give a verified network encryption key${unavailable ? ` within ${timeoutMs} ms` : ''}: ${(err as Error).message}`);
          }
          await sleep(100);
        }
      }
    }),
  );
  const first = keys[0]!;
  const hex = (k: VerifiedEncryptionKey): string => Buffer.from(k.publicKey).toString('hex');
  const other = keys.findIndex((k) => k.generation !== first.generation || hex(k) !== hex(first));
  if (other >= 0) throw new Error(`node ${other + 1} offers another network key (generation ${keys[other]!.generation}) than node 1 (generation ${first.generation})`);
  log(`network encryption key: generation ${first.generation}, ${hex(first).slice(0, 16)}…, verified on ${urls.length} node(s)`);
  return first;
}

/**
 * Mints `amount` of private-token to every sender by sealed mint transactions
 * from `issuer` (the first mint makes it the issuer), through the first node;
 * returns once every node committed the last, after checking that the mints
 * succeeded (the first receipt's sealed answer opened if not) and that a
 * sender's balance reads back through a sealed call.
 */
export async function fundSendersSealed(
  urls: string[],
  chainId: string,
  issuer: Ed25519Signer,
  senders: Ed25519Signer[],
  key: VerifiedEncryptionKey,
  opts: { amount: number; gasLimit: number; batchSize: number },
): Promise<void> {
  const session = new SealingSession(key.publicKey);
  const sealed = senders.map((s, i) =>
    sealTransaction(
      { chainId, from: issuer.publicKey, nonce: i, contract: PRIVATE_TOKEN, method: 'mint', args: [s.publicKey, opts.amount], gasLimit: opts.gasLimit },
      issuer,
      key,
      session,
    ),
  );
  const txs: SignedTx[] = sealed.map((s) => s.tx);
  const last = await sendSetup(urls, txs, opts.batchSize);
  const url = urls[0]!;
  const receipt = await rpcCall<ReceiptView>(url, 'chain_getTransactionReceipt', [last]);
  if (receipt.status !== 'success') {
    const first = await rpcCall<ReceiptView | null>(url, 'chain_getTransactionReceipt', [txHash(txs[0]!)]);
    const why = first?.sealed ? JSON.stringify(openReceipt(first, sealed[0]!.resultKey).opened.error) : receipt.error?.message;
    throw new Error(`the sealed mints failed: ${why}`);
  }
  const check = senders[senders.length - 1]!;
  const { result } = await new CloisterClient(url).sealedCall(PRIVATE_TOKEN, 'balanceOf', [check.publicKey], key, { signer: check, chainId });
  if (result !== opts.amount) throw new Error(`private-token.balanceOf(last sender) is ${JSON.stringify(result)} after the mints, not ${opts.amount}`);
}
