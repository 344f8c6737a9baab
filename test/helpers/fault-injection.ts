/**
 * Fault injection with real processes: a load that survives its nodes dying,
 * and the checks every fault round ends with (the chain moves on, no committed
 * transaction is lost, no height goes back, the nodes agree).
 */
import { Ed25519Signer, generateEd25519KeyPair, signTx } from '../../consensus/index.js';
import { CloisterClient, RpcError } from '../../node/client/index.js';
import { sleep, waitUntil } from './consortium.js';
import { prng } from './prng.js';

export { prng };

/** Where the load sends: the RPC URLs of the nodes running now (an empty list while none runs). */
export type Targets = () => string[];

/**
 * Signed `counter.increment` transactions from a few senders, each sent to a
 * running node with the nonce that node says is next, so the load carries on
 * across crashes that lose the mempool (a transaction acknowledged but not yet
 * committed may be lost when every node holding it dies; a committed one never).
 * Receipts are polled: what has one is "committed" and must stay so.
 */
export class FollowingLoad {
  readonly committed = new Map<string, { blockHash: string; height: number }>();
  readonly #sent = new Set<string>();
  readonly #signers = Array.from({ length: 4 }, () => new Ed25519Signer(generateEd25519KeyPair().privateKey));
  readonly #clients = new Map<string, CloisterClient>();
  #running = false;
  #loops: Promise<void>[] = [];
  #turn = 0;
  errors = 0;

  constructor(
    private readonly chainId: string,
    private readonly targets: Targets,
    private readonly pauseMs = 30,
  ) {}

  start(): this {
    this.#running = true;
    this.#loops = [...this.#signers.map((s) => this.#sender(s)), this.#watchReceipts()];
    return this;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  #client(url: string): CloisterClient {
    let c = this.#clients.get(url);
    if (!c) this.#clients.set(url, (c = new CloisterClient(url, { timeoutMs: 4000 })));
    return c;
  }

  #target(): string | undefined {
    const urls = this.targets();
    return urls.length === 0 ? undefined : urls[this.#turn++ % urls.length];
  }

  async #sender(signer: Ed25519Signer): Promise<void> {
    while (this.#running) {
      const url = this.#target();
      if (url) {
        try {
          const client = this.#client(url);
          const nonce = await client.getNonce(signer.publicKey);
          const tx = signTx({ chainId: this.chainId, from: signer.publicKey, nonce, contract: 'counter', method: 'increment', args: [], gasLimit: 1_000_000 }, signer);
          this.#sent.add(await client.sendTransaction(tx));
        } catch (err) {
          // A node going down, a full mempool, a duplicate from a racing send: all expected under faults.
          if (!(err instanceof RpcError) || err.chainCode !== 'TX_DUPLICATE') this.errors++;
        }
      }
      await sleep(this.pauseMs);
    }
  }

  async #watchReceipts(): Promise<void> {
    while (this.#running) {
      const url = this.#target();
      const pending = [...this.#sent].filter((h) => !this.committed.has(h)).slice(0, 300);
      if (url && pending.length > 0) {
        try {
          const batch = this.#client(url).batch();
          const handles = pending.map((h) => batch.add('chain_getTransactionReceipt', h));
          const results = await batch.send();
          handles.forEach((handle, i) => {
            const r = results.get(handle);
            if (r.ok && r.value) this.committed.set(pending[i]!, { blockHash: r.value.blockHash, height: r.value.blockHeight });
          });
        } catch {
          // that node died meanwhile
        }
      }
      await sleep(150);
    }
  }

  /**
   * Every transaction seen committed before still has its receipt on the node
   * at `url`, in the same block (once that node has caught up to the highest
   * of those blocks). Throws naming the first one lost.
   */
  async assertCommittedKept(url: string, catchUpMs = 30_000): Promise<void> {
    const all = [...this.committed];
    const highest = Math.max(0, ...all.map(([, seen]) => seen.height));
    await waitForHeightAbove(url, highest - 1, catchUpMs, `${url} to catch up to the blocks of the committed transactions`);
    const client = this.#client(url);
    for (let k = 0; k < all.length; k += 400) {
      const chunk = all.slice(k, k + 400);
      const batch = client.batch();
      const handles = chunk.map(([hash]) => batch.add('chain_getTransactionReceipt', hash));
      const results = await batch.send();
      handles.forEach((handle, i) => {
        const [hash, seen] = chunk[i]!;
        const r = results.get(handle);
        const receipt = r.ok ? r.value : null;
        if (!receipt) throw new Error(`committed transaction ${hash} (block ${seen.height}) has no receipt on ${url} any more`);
        if (receipt.blockHash !== seen.blockHash) throw new Error(`transaction ${hash} moved from block ${seen.blockHash} to ${receipt.blockHash} on ${url}`);
      });
    }
  }
}

/** Waits until the node at `url` has committed a block above `height`; returns its height. */
export async function waitForHeightAbove(url: string, height: number, timeoutMs: number, what: string): Promise<number> {
  const client = new CloisterClient(url, { timeoutMs: 3000 });
  let last = -1;
  await waitUntil(async () => (last = await client.blockNumber()) > height, timeoutMs, `${what} to commit above height ${height} (it is at ${last})`, 100);
  return last;
}
