import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sha256Hex, type Genesis, type Receipt, type SignedTx } from '../../consensus/index.js';
import type { ViewTransitionProof } from '../../contracts/index.js';
import type { ReceiptView, TransactionView } from '../chain/api.js';
import type { CloisterClient } from '../client/index.js';
import { nodePaths } from '../config/node-config.js';
import { ChainStore, receiptAsHashed } from '../storage/chain-store.js';
import { LEDGER_FILE_KIND, type LedgerBlock, type LedgerFileHeader, type LedgerSource } from './types.js';

/** Why a ledger could not be read at all (as opposed to read and found wrong). */
export class LedgerSourceError extends Error {
  override readonly name = 'LedgerSourceError';
}

const RECEIPTS_PER_BATCH = 500;

const initHashes = (genesis: Genesis): string[] => genesis.contracts.map((c) => sha256Hex(`genesis-init:${c.name}`));


/** A stopped node's data directory (its level database, opened by this process alone). */
export async function storeSource(dataDir: string, genesis: Genesis): Promise<LedgerSource> {
  const path = nodePaths(dataDir).db;
  if (!existsSync(join(path, 'CURRENT'))) throw new LedgerSourceError(`${dataDir} holds no node database (${path})`);
  const store = new ChainStore(path);
  try {
    await store.open();
  } catch (err) {
    const locked = /lock/i.test(String((err as { cause?: Error }).cause?.message ?? (err as Error).message));
    throw new LedgerSourceError(locked ? `the node using ${dataDir} is running: stop it first, or verify over --rpc` : `cannot open ${path}: ${(err as Error).message}`);
  }
  const head = (await store.getHead())?.height ?? -1;
  const transitions = new Map((await store.viewTransitions()).map((t) => [t.height, t]));
  return {
    describe: `the data directory ${dataDir}`,
    head,
    async *blocks() {
      for (let h = 0; h <= head; h++) {
        const block = await store.getBlock(h);
        if (!block) throw new LedgerSourceError(`block ${h} is missing from the store (its head is ${head})`);
        const hashes = h === 0 ? initHashes(genesis) : block.txHashes;
        const [txs, receipts] = await Promise.all([h === 0 ? [] : store.getTxs(hashes), store.getReceipts(hashes)]);
        const transition = transitions.get(h);
        yield {
          header: block.header,
          certificate: block.certificate,
          // A missing transaction or receipt is left out: the roots then name the block.
          txs: (txs as (SignedTx | { tx: SignedTx } | undefined)[]).flatMap((t) => (t === undefined ? [] : ['tx' in t ? t.tx : t])),
          receipts: receipts.flatMap((r) => (r === undefined ? [] : [receiptAsHashed(r)])),
          ...(transition ? { transition } : {}),
        };
      }
    },
    close: () => store.close(),
  };
}

function receiptOf(view: ReceiptView): Receipt {
  return {
    txHash: view.txHash,
    index: view.index,
    status: view.status,
    gasUsed: view.gasUsed,
    result: view.result,
    events: view.events,
    error: view.error ?? null,
    ...(view.sealed !== undefined ? { sealed: view.sealed } : {}),
  };
}

function signedTxOf(view: TransactionView): SignedTx {
  const { hash: _h, blockHeight: _bh, blockHash: _b, index: _i, ...tx } = view;
  return tx as SignedTx;
}

/** A running node, over its JSON-RPC (a few blocks fetched ahead while one is checked). */
export async function rpcSource(client: CloisterClient, genesis: Genesis, url: string): Promise<LedgerSource> {
  const head = await client.blockNumber();
  const transitions = new Map<number, ViewTransitionProof>();
  for (let from = 0; ; ) {
    const page = await client.request('chain_getViewTransitions', from);
    for (const t of page) transitions.set(t.height, t);
    if (page.length < 1000) break;
    from = page[page.length - 1]!.height + 1;
  }
  const fetchBlock = async (h: number): Promise<LedgerBlock> => {
    const block = await client.getBlockByNumber(h, true);
    if (!block) throw new LedgerSourceError(`${url} has no block ${h} (its head was ${head})`);
    const txs = (block.transactions as TransactionView[]).map(signedTxOf);
    const hashes = h === 0 ? initHashes(genesis) : (block.transactions as TransactionView[]).map((t) => t.hash);
    // Receipts by batches (a node bounds the requests of one client in flight, and the entries of a batch).
    const receipts: (ReceiptView | null)[] = [];
    for (let i = 0; i < hashes.length; i += RECEIPTS_PER_BATCH) {
      const batch = client.batch();
      const handles = hashes.slice(i, i + RECEIPTS_PER_BATCH).map((hash) => batch.add('chain_getTransactionReceipt', hash));
      const results = await batch.send();
      for (const handle of handles) receipts.push(results.value(handle));
    }
    const transition = transitions.get(h);
    return {
      header: block.header,
      certificate: block.certificate,
      txs,
      receipts: receipts.flatMap((r) => (r === null ? [] : [receiptOf(r)])),
      ...(transition ? { transition } : {}),
    };
  };
  return {
    describe: url,
    head,
    async *blocks() {
      const AHEAD = 4;
      const pending: Promise<LedgerBlock>[] = [];
      let next = 0;
      while (next <= head || pending.length > 0) {
        while (pending.length < AHEAD && next <= head) {
          const fetched = fetchBlock(next++);
          // Awaited in turn below; a failure of one fetched ahead must not go unhandled while an earlier one fails first.
          fetched.catch(() => {});
          pending.push(fetched);
        }
        yield await pending.shift()!;
      }
    },
    close: async () => {},
  };
}

/** An exported ledger file: a header line, then one block per line. */
export async function fileSource(file: string, genesisHashHex: string): Promise<LedgerSource> {
  if (!existsSync(file)) throw new LedgerSourceError(`no such file: ${file}`);
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  const iterator = lines[Symbol.asyncIterator]();
  const first = await iterator.next();
  let header: LedgerFileHeader;
  try {
    header = JSON.parse(first.done ? '' : first.value) as LedgerFileHeader;
  } catch {
    lines.close();
    throw new LedgerSourceError(`${file} is not an exported ledger (its first line is not JSON)`);
  }
  if (header?.kind !== LEDGER_FILE_KIND) {
    lines.close();
    throw new LedgerSourceError(`${file} is not an exported ledger (kind ${String(header?.kind)}, expected ${LEDGER_FILE_KIND})`);
  }
  if (header.genesisHash !== genesisHashHex) {
    lines.close();
    throw new LedgerSourceError(`${file} is the ledger of genesis ${header.genesisHash}, not of this genesis (${genesisHashHex})`);
  }
  return {
    describe: file,
    head: header.head,
    async *blocks() {
      let line = 1;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        line++;
        if (next.value.trim() === '') continue;
        try {
          yield JSON.parse(next.value) as LedgerBlock;
        } catch {
          throw new LedgerSourceError(`${file}:${line} is not JSON`);
        }
      }
    },
    close: async () => lines.close(),
  };
}
