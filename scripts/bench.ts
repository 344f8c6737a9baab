/**
 * `npm run bench -- --nodes 1 [--duration S] [--rate R]`
 *
 * Starts a fresh node, funds many senders with token.mint, then drives
 * token.transfer transactions over JSON-RPC (batched requests, several streams
 * at once) as fast as the node takes them or at R tx/s offered. Prints progress
 * to stderr and, last, one JSON line:
 *   {"nodes":1,"txPerSec":…,"p50Ms":…,"p99Ms":…,"verifyPerSec":…}
 * txPerSec counts transactions committed inside the measured window; latency is
 * from submission to the first observation of the block that holds them.
 */
import '../node/polyfills.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Ed25519Signer, generateEd25519KeyPair, signTx, type SignedTx } from '../consensus/index.js';
import { readKeyFile } from '../node/keys/key-file.js';
import { projectRoot } from '../node/util/project-root.js';
import { rpcBatch, rpcCall } from './bench/rpc.js';
import { spawnDevNode } from './bench/spawn-node.js';
import { measureAttestationRates } from './bench/attestation-rate.js';
import { measureVerifyRate } from './bench/verify-rate.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1' },
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '0' },
    senders: { type: 'string', default: '512' },
    /** Transactions per JSON-RPC request; default 250, or at a fixed --rate about 20 requests per second per stream. */
    batch: { type: 'string' },
    streams: { type: 'string', default: '4' },
    /** Write V8 CPU profiles of the node (main thread and enclave worker) into this directory. */
    profile: { type: 'string' },
    /** Instead of the chain: how many SEV-SNP reports and SGX quotes one core verifies per second. */
    attestation: { type: 'boolean', default: false },
  },
});
if (values.attestation) {
  const samples = process.env['CLOISTER_ATTESTATION_SAMPLES'] ?? resolve(projectRoot(), '../shared/attestation-samples');
  const rates = measureAttestationRates(samples);
  if (rates.snpPerSec === null) process.stderr.write(`[bench] no attestation samples at ${samples}: only virtual evidence measured\n`);
  process.stdout.write(JSON.stringify(rates) + '\n');
  process.exit(0);
}
const nodes = Number(values.nodes);
const durationS = Number(values.duration);
const rate = Number(values.rate);
const senderCount = Number(values.senders);
const streamCount0 = Number(values.streams);
const batchSize =
  values.batch !== undefined
    ? Number(values.batch)
    : Number(values.rate) > 0
      ? Math.max(5, Math.min(250, Math.round(Number(values.rate) / (streamCount0 * 20))))
      : 250;
const streamCount = Number(values.streams);
if (nodes !== 1) {
  process.stderr.write('only --nodes 1 is supported so far (the multi-node devnet comes with the consortium issue)\n');
  process.exit(2);
}
if (!(durationS > 0) || !(rate >= 0) || !(senderCount > 0) || !(batchSize > 0) || !(streamCount > 0)) {
  process.stderr.write('--duration, --senders, --batch and --streams must be positive, --rate >= 0\n');
  process.exit(2);
}

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const submitted = new Map<string, number>();
const latencies: number[] = [];
const commitTimes: number[] = [];
let rejected = 0;
let firstRejection = '';

async function watchCommits(url: string, fromHeight: number, until: () => boolean): Promise<void> {
  let height = fromHeight;
  while (!until()) {
    const head = await rpcCall<number>(url, 'chain_blockNumber');
    if (head > height) {
      const calls = [];
      for (let h = height + 1; h <= head; h++) calls.push({ method: 'chain_getBlockByNumber', params: [h, false] });
      const replies = await rpcBatch(url, calls);
      const now = performance.now();
      for (const reply of replies) {
        const block = reply.result as { transactions: string[] } | null;
        for (const hash of block?.transactions ?? []) {
          const sentAt = submitted.get(hash);
          if (sentAt === undefined) continue;
          submitted.delete(hash);
          latencies.push(now - sentAt);
          commitTimes.push(now);
        }
      }
      height = head;
    } else {
      await sleep(3);
    }
  }
}

async function sendAll(url: string, txs: SignedTx[]): Promise<string[]> {
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

async function waitForReceipts(url: string, hashes: string[]): Promise<void> {
  const last = hashes[hashes.length - 1]!;
  for (;;) {
    const [reply] = await rpcBatch(url, [{ method: 'chain_getTransactionReceipt', params: [last] }]);
    if (reply?.result) return;
    await sleep(20);
  }
}

async function main(): Promise<void> {
  log('measuring ed25519 verification on one core');
  const verifyPerSec = measureVerifyRate(1000);
  const dataDir = mkdtempSync(join(tmpdir(), 'cloister-bench-'));
  log(`starting a fresh node in ${dataDir}`);
  const node = await spawnDevNode(
    projectRoot(),
    dataDir,
    ['--fresh'],
    values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [],
  );
  try {
    const url = node.rpcUrl;
    const status = await rpcCall<{ chainId: string }>(url, 'node_status');
    const owner = new Ed25519Signer(readKeyFile(join(dataDir, 'member.json')).privateKey);
    const senders = Array.from({ length: senderCount }, () => new Ed25519Signer(generateEd25519KeyPair().privateKey));
    const gasLimit = 200_000;

    log(`funding ${senderCount} senders`);
    const mints = senders.map((s, i) =>
      signTx(
        { chainId: status.chainId, from: owner.publicKey, nonce: i, contract: 'token', method: 'mint', args: [s.publicKey, 1_000_000_000], gasLimit },
        owner,
      ),
    );
    // One sender may have at most 1,000 waiting transactions: fund in waves.
    for (let i = 0; i < mints.length; i += 900) await waitForReceipts(url, await sendAll(url, mints.slice(i, i + 900)));

    const total = rate > 0 ? Math.ceil(rate * durationS) : Math.ceil(9000 * durationS);
    log(`signing ${total} token.transfer transactions`);
    const nonces = new Array<number>(senderCount).fill(0);
    const streams: SignedTx[][] = Array.from({ length: streamCount }, () => []);
    for (let i = 0; i < total; i++) {
      // Yield now and then so the HTTP client keeps its connections healthy.
      if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
      const s = i % senderCount;
      const signer = senders[s]!;
      const to = senders[(s + 1) % senderCount]!.publicKey;
      const tx = signTx(
        { chainId: status.chainId, from: signer.publicKey, nonce: nonces[s]!++, contract: 'token', method: 'transfer', args: [to, 1], gasLimit },
        signer,
      );
      // A sender always goes to the same stream, so its nonces arrive in order.
      streams[s % streamCount]!.push(tx);
    }

    const startHeight = await rpcCall<number>(url, 'chain_blockNumber');
    let loadDone = false;
    let drained = false;
    const watcher = watchCommits(url, startHeight, () => drained);
    const t0 = performance.now();
    const deadline = t0 + durationS * 1000;
    const progress = setInterval(() => {
      const elapsed = (performance.now() - t0) / 1000;
      log(`t=${elapsed.toFixed(1)}s committed=${latencies.length} waiting=${submitted.size} rejected=${rejected}`);
    }, 1000);

    const perStreamRate = rate > 0 ? rate / streamCount : 0;
    await Promise.all(
      streams.map(async (txs) => {
        let sent = 0;
        for (let i = 0; i < txs.length; i += batchSize) {
          if (performance.now() >= deadline) break;
          if (perStreamRate > 0) {
            const due = t0 + (sent / perStreamRate) * 1000;
            const wait = due - performance.now();
            if (wait > 0) await sleep(wait);
          }
          const batch = txs.slice(i, i + batchSize);
          const sentAt = performance.now();
          const replies = await rpcBatch(url, batch.map((tx) => ({ method: 'chain_sendTransaction', params: [tx] })));
          for (const reply of replies) {
            if (reply.error) {
              rejected++;
              firstRejection ||= reply.error.message;
            } else {
              submitted.set(reply.result as string, sentAt);
            }
          }
          sent += batch.length;
        }
      }),
    );
    loadDone = true;
    const drainDeadline = performance.now() + 30_000;
    while (submitted.size > 0 && performance.now() < drainDeadline) await sleep(20);
    drained = true;
    await watcher;
    clearInterval(progress);
    void loadDone;

    const windowEnd = Math.min(deadline, performance.now());
    const inWindow = commitTimes.filter((t) => t <= windowEnd).length;
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (p: number): number => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!) : 0);
    log(`committed ${latencies.length} transactions, ${submitted.size} never committed, ${rejected} refused${firstRejection ? ` (first: ${firstRejection})` : ''}`);
    process.stdout.write(
      JSON.stringify({
        nodes,
        txPerSec: Math.round(inWindow / ((windowEnd - t0) / 1000)),
        p50Ms: pct(0.5),
        p99Ms: pct(0.99),
        verifyPerSec,
      }) + '\n',
    );
  } catch (err) {
    log(`node exit code: ${node.process.exitCode}; its last log lines:\n${node.stderrTail()}`);
    throw err;
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}${cause}\n`);
  process.exit(1);
});
