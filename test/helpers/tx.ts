import { Ed25519Signer, generateEd25519KeyPair, signTx, type Genesis, type JsonValue, type SignedTx } from '../../consensus/index.js';
import type { CloisterClient, OpenedAnswer, ReceiptView } from '../../node/client/index.js';

export const newSigner = (): Ed25519Signer => new Ed25519Signer(generateEd25519KeyPair().privateKey);

export interface TxOptions {
  chainId?: string;
  nonce?: number;
  gasLimit?: number;
}

export async function buildTx(
  client: CloisterClient,
  signer: Ed25519Signer,
  contract: string,
  method: string,
  args: JsonValue[] = [],
  options: TxOptions = {},
): Promise<SignedTx> {
  const chainId = options.chainId ?? (await client.status()).chainId;
  const nonce = options.nonce ?? (await client.getNonce(signer.publicKey));
  return signTx(
    { chainId, from: signer.publicKey, nonce, contract, method, args, gasLimit: options.gasLimit ?? 1_000_000 },
    signer,
  );
}

/** Signs, sends and waits for the receipt. */
export async function execute(
  client: CloisterClient,
  signer: Ed25519Signer,
  contract: string,
  method: string,
  args: JsonValue[] = [],
  options: TxOptions = {},
) {
  const hash = await client.sendTransaction(await buildTx(client, signer, contract, method, args, options));
  return client.waitForReceipt(hash, { timeoutMs: 20_000, pollMs: 20 });
}

/**
 * Seals, signs, sends and waits for a transaction to a confidential contract;
 * the receipt comes back with its sealed answer opened (`opened`). The network
 * key is verified against `genesis` first, as a real client does.
 */
export async function executeSealed(
  client: CloisterClient,
  genesis: Genesis,
  signer: Ed25519Signer,
  contract: string,
  method: string,
  args: JsonValue[] = [],
  options: TxOptions = {},
): Promise<ReceiptView & { opened: OpenedAnswer }> {
  const key = await client.encryptionKey(genesis);
  const chainId = options.chainId ?? genesis.chainId;
  const nonce = options.nonce ?? (await client.getNonce(signer.publicKey));
  const { hash, open } = await client.sendSealedTransaction(
    { chainId, from: signer.publicKey, nonce, contract, method, args, gasLimit: options.gasLimit ?? 1_000_000 },
    signer,
    key,
  );
  return open(await client.waitForReceipt(hash, { timeoutMs: 20_000, pollMs: 20 }));
}
