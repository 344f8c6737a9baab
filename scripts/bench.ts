/**
 * `npm run bench -- --nodes N [--duration S] [--rate R] [--confidential]`
 *
 * --nodes 1 (the default) starts a fresh single node (`cloister dev`); --nodes N
 * (N >= 2) a fresh N-node consortium with the real CLI (`cloister devnet
 * --nodes N --fresh`, on free ports, in a temporary directory). Funds many
 * senders with token.mint, then drives token.transfer transactions over
 * JSON-RPC (batched requests, several streams at once) as fast as the chain
 * takes them or at R tx/s offered. On a devnet the clients send to every node:
 * sender k always sends to node k % N (a sender's nonces must reach one mempool
 * in order). Prints progress to stderr and, last, one JSON line:
 *   {"nodes":N,"txPerSec":…,"p50Ms":…,"p99Ms":…,"ackP50Ms":…,"ackP99Ms":…,"verifyPerSec":…}
 * txPerSec counts transactions committed inside the measured window, on the
 * first node's blocks (every node holds the same blocks); latency is from
 * submission to the first observation, on the node the transaction was sent
 * to, of the block that holds it. ackP50Ms/ackP99Ms are the part of it the
 * node took to answer chain_sendTransaction (admission in the enclave, then the
 * hand-over to the peers). With --rate the clients are open-loop (each request
 * on its schedule, up to 16 in flight per stream), and
 * scheduledP50Ms/scheduledP99Ms count the latency from when the schedule meant
 * to send each transaction: the same as p50Ms/p99Ms unless a stream reached
 * its bound and fell behind.
 *
 * --confidential drives the confidential twin of token instead:
 * private-token (scripts/bench/contracts/private-token, deployed at genesis
 * beside the examples; on a devnet, whose CLI has no --contract, by preparing
 * its directory first, scripts/bench/devnet-contracts.ts). Once every node
 * gives the network encryption key (verified against the genesis), the member
 * key funds the senders by sealed private-token.mint transactions (the first
 * mint makes it the issuer), and the load is sealed private-token.transfer
 * transactions (sealTransaction: HPKE to the network key, then signed), as
 * many as the public run's, built and signed before the timed window and laid
 * out over the streams exactly as the public ones (sealing costs several times
 * a signature, so it runs on every core: scripts/bench/seal-pool.ts), and
 * driven by the same load loop. The JSON line then carries "confidential":true:
 *   {"nodes":N,"confidential":true,"txPerSec":…,"p50Ms":…,"p99Ms":…,"verifyPerSec":…}
 * Run both in one session to compare them (the machine's load changes).
 * Works with --nodes N, --rate, --profile and the other load options; ignored
 * by --attestation, --gas and --transport.
 *
 * Other options:
 *   --warmup S      send the same load for S seconds first, not measured
 *                   (0): latency and throughput then leave out the nodes' and
 *                   the client's warm-up
 *   --senders N     funded senders (512)
 *   --streams N     concurrent client streams (4; on a devnet rounded up to a
 *                   multiple of N, stream j sending to node j % N)
 *   --batch N       transactions per JSON-RPC request
 *   --poll-ms N     how often each watched node is asked for its head (3 ms;
 *                   10 ms on a devnet, where one watcher per node polls)
 *   --profile DIR   V8 CPU profiles of every thread of every node process for
 *                   the load window only (pid-P-thread-T.cpuprofile, beside it
 *                   .json with the thread's real CPU time); then prints the CPU
 *                   per committed transaction by component (verification,
 *                   execution, storage, gossip, host-enclave messages, RPC, load
 *                   generator, …: scripts/bench/cpu-report.ts) and adds it to
 *                   the JSON line as "cpuUsPerTx"
 *   --keep          keep the data directory (a devnet's node logs are in
 *                   node-i/node.log)
 *   --attestation   evidence verification rates instead of the chain
 *   --gas           instead of the chain: the wall and CPU time of a contract call
 *                   at the maximum gas limit for each adversarial workload of
 *                   scripts/bench/gas-shapes.ts, and the per-call cost of
 *                   counter.increment and token.transfer (scripts/bench/gas.ts);
 *                   last line {"maxGasLimit","shapes":[…],"worstWallMs","worstCpuMs",
 *                   "counterIncrement","tokenTransfer"}
 *   --transport     instead of the chain: µs of CPU per message (300 and 2,000
 *                   bytes, each answered with 8) on one libp2p connection, the
 *                   libraries as shipped against as the node sets them up
 *                   (scripts/bench/transport.ts); last line
 *                   {"transport":[{"size","plainUsPerMessage","nodeUsPerMessage"}]}
 * BENCH_NODE_LOG_LEVEL sets the nodes' log level (warn).
 */
import '../node/polyfills.js';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Ed25519Signer, generateEd25519KeyPair, signTx } from '../consensus/index.js';
import type { VerifiedEncryptionKey } from '../node/client/index.js';
import { readGenesisFile } from '../node/dev/dev-chain.js';
import { readKeyFile } from '../node/keys/key-file.js';
import { projectRoot } from '../node/util/project-root.js';
import { measureAttestationRates } from './bench/attestation-rate.js';
import { measureGasBounds } from './bench/gas.js';
import { startChain, type BenchChain } from './bench/chain.js';
import { fundSendersSealed, PRIVATE_TOKEN, privateTokenDir, waitForEncryptionKey } from './bench/confidential.js';
import { markProfileWindow } from './bench/cpu-profile.js';
import { cpuReport, formatCpuReport, type CpuReport } from './bench/cpu-report.js';
import { fundSenders } from './bench/fund.js';
import { percentile, prepare, runLoad, type Stream } from './bench/load.js';
import { rpcCall } from './bench/rpc.js';
import { measureTransport, type TransportSetup } from './bench/transport.js';
import { sealTransfers } from './bench/seal-pool.js';
import { measureVerifyRate } from './bench/verify-rate.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1' },
    duration: { type: 'string', default: '10' },
    /** Seconds of the same load sent first and not measured. */
    warmup: { type: 'string', default: '0' },
    rate: { type: 'string', default: '0' },
    senders: { type: 'string', default: '512' },
    /** Transactions per JSON-RPC request; default 250, or at a fixed --rate about 20 requests per second per stream. */
    batch: { type: 'string' },
    streams: { type: 'string', default: '4' },
    /** How often each watched node is asked for its head; default 3 ms for one node, 10 ms per node on a devnet. */
    'poll-ms': { type: 'string' },
    /** Write V8 CPU profiles of the node processes (main thread, enclave and verifier threads) into this directory. */
    profile: { type: 'string' },
    /** Keep the chain's data directory (node logs in node-i/node.log on a devnet). */
    keep: { type: 'boolean', default: false },
    /** Instead of the chain: how many SEV-SNP reports and SGX quotes one core verifies per second. */
    attestation: { type: 'boolean', default: false },
    /** Instead of the chain: contract calls at the maximum gas limit, and ordinary per-call costs. */
    gas: { type: 'boolean', default: false },
    /** Instead of the chain: CPU per small message on one libp2p connection, libraries as shipped against as the node sets them up. */
    transport: { type: 'boolean', default: false },
    /** Sealed transfers of the confidential private-token instead of token.transfer. */
    confidential: { type: 'boolean', default: false },
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
const warmupS = Number(values.warmup);
const rate = Number(values.rate);
const senderCount = Number(values.senders);
const confidential = values.confidential;
// One watcher per node: polling four nodes every 3 ms would cost them (and the load generator) a noticeable share of the two cores.
const pollMs = Number(values['poll-ms'] ?? (nodes === 1 ? 3 : 10));
// Stream j sends to node j % nodes, and sender s goes to stream s % streams: a multiple of nodes keeps sender s on node s % nodes.
const streamCount = Math.ceil(Number(values.streams) / nodes) * nodes;
const batchSize =
  values.batch !== undefined ? Number(values.batch) : rate > 0 ? Math.max(5, Math.min(250, Math.round(rate / (streamCount * 20)))) : 250;
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) {
  process.stderr.write('--nodes must be an integer from 1 to 16\n');
  process.exit(2);
}
if (!(warmupS >= 0)) {
  process.stderr.write('--warmup must be a number of seconds >= 0\n');
  process.exit(2);
}
if (!(durationS > 0) || !(rate >= 0) || !(senderCount > 0) || !(batchSize > 0) || !(streamCount > 0) || !(pollMs >= 0)) {
  process.stderr.write('--duration, --senders, --batch and --streams must be positive, --rate and --poll-ms >= 0\n');
  process.exit(2);
}

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

if (values.gas) {
  const result = await measureGasBounds({ root: projectRoot(), runs: 3, log });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

if (values.transport) {
  const samples = measureTransport({ sizes: [300, 2000], messages: 30_000, rounds: 3, log });
  const median = (setup: TransportSetup, size: number): number => {
    const v = samples.filter((s) => s.setup === setup && s.size === size).map((s) => s.cpuUsPerMessage).sort((a, b) => a - b);
    return Math.round(v[Math.floor(v.length / 2)]! * 10) / 10;
  };
  const bySize = [300, 2000].map((size) => ({ size, plainUsPerMessage: median('plain', size), nodeUsPerMessage: median('node', size) }));
  process.stdout.write(JSON.stringify({ transport: bySize }) + '\n');
  process.exit(0);
}

async function run(chain: BenchChain, verifyPerSec: number): Promise<void> {
  const urls = chain.urls;
  const status = await rpcCall<{ chainId: string }>(urls[0]!, 'node_status');
  const owner = new Ed25519Signer(readKeyFile(chain.memberKeyFile).privateKey);
  const senderKeys = Array.from({ length: senderCount }, () => generateEd25519KeyPair().privateKey);
  const senders = senderKeys.map((k) => new Ed25519Signer(k));
  const gasLimit = 200_000;

  const contract = confidential ? PRIVATE_TOKEN : 'token';
  let key: VerifiedEncryptionKey | undefined;
  if (confidential) {
    key = await waitForEncryptionKey(urls, readGenesisFile(chain.genesisFile), log);
    log(`funding ${senderCount} senders (sealed ${PRIVATE_TOKEN}.mint)`);
    await fundSendersSealed(urls, status.chainId, owner, senders, key, { amount: 1_000_000_000, gasLimit, batchSize });
  } else {
    log(`funding ${senderCount} senders`);
    await fundSenders(urls, status.chainId, owner, senders, { amount: 1_000_000_000, gasLimit, batchSize });
  }

  const total = Math.ceil((rate > 0 ? rate : 9000) * (warmupS + durationS));
  log(`${confidential ? 'sealing and signing' : 'signing'} ${total} ${contract}.transfer transactions`);
  const signStart = performance.now();
  const nonces = new Array<number>(senderCount).fill(0);
  const streams: Stream[] = Array.from({ length: streamCount }, (_, j) => ({ node: j % nodes, txs: [] }));
  // Sealed: the same transfers, sealed and signed on every core (seal-pool.ts), then laid out below exactly as the public ones.
  const sealed = key
    ? await sealTransfers({
        chainId: status.chainId,
        contract,
        method: 'transfer',
        amount: 1,
        gasLimit,
        key,
        privateKeys: senderKeys,
        publicKeys: senders.map((s) => s.publicKey),
        counts: senders.map((_, s) => (s < total ? Math.floor((total - 1 - s) / senderCount) + 1 : 0)),
      })
    : undefined;
  for (let i = 0; i < total; i++) {
    // Yield now and then so the HTTP client keeps its connections healthy.
    if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
    const s = i % senderCount;
    const signer = senders[s]!;
    const to = senders[(s + 1) % senderCount]!.publicKey;
    const nonce = nonces[s]!++;
    // A sender always goes to the same stream, so its nonces arrive in order at one node.
    const prepared = sealed
      ? sealed[s]![nonce]!
      : prepare(signTx({ chainId: status.chainId, from: signer.publicKey, nonce, contract, method: 'transfer', args: [to, 1], gasLimit }, signer));
    streams[s % streamCount]!.txs.push(prepared);
  }
  log(`built and signed in ${((performance.now() - signStart) / 1000).toFixed(1)} s`);

  log(`load: ${streamCount} stream(s) over ${nodes} node(s), batches of ${batchSize}, ${rate > 0 ? `${rate} tx/s offered` : 'as fast as possible'}, ${warmupS > 0 ? `${warmupS} s of warm-up, then ` : ''}${durationS} s`);
  const profileDir = values.profile ? resolve(values.profile) : undefined;
  const result = await runLoad({
    urls,
    streams,
    durationS,
    warmupS,
    rate,
    batchSize,
    pollMs,
    log,
    ...(profileDir ? { onWindow: (mark: 'start' | 'stop') => markProfileWindow(profileDir, mark) } : {}),
  });
  log(
    `committed ${result.latencies.length} transactions, ${result.neverCommitted} never committed, ${result.rejected} refused` +
      (result.firstRejection ? ` (first: ${result.firstRejection})` : ''),
  );
  const cpu = profileDir ? await reportCpu(profileDir, result.committedInWindow, result.loadGeneratorCpuMs) : undefined;
  process.stdout.write(
    JSON.stringify({
      nodes,
      ...(confidential ? { confidential: true } : {}),
      txPerSec: result.txPerSec,
      p50Ms: percentile(result.latencies, 0.5),
      p99Ms: percentile(result.latencies, 0.99),
      ackP50Ms: percentile(result.ackLatencies, 0.5),
      ackP99Ms: percentile(result.ackLatencies, 0.99),
      ...(rate > 0 ? { scheduledP50Ms: percentile(result.scheduledLatencies, 0.5), scheduledP99Ms: percentile(result.scheduledLatencies, 0.99) } : {}),
      verifyPerSec,
      ...(cpu ? { cpuUsPerTx: Object.fromEntries(cpu.rows.map((r) => [r.component, r.usPerTx])) } : {}),
    }) + '\n',
  );
}

/** Waits for every profiled thread's files, then prints where the window's CPU went, per committed transaction. */
async function reportCpu(dir: string, committed: number, loadGeneratorCpuMs: number): Promise<CpuReport | undefined> {
  // Each thread writes its profile on its own after the stop mark: wait until the count stops growing.
  let count = -1;
  for (let stable = 0, waited = 0; stable < 10 && waited < 300; waited++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = readdirSync(dir).filter((f) => f.endsWith('.json')).length;
    stable = now === count && now > 0 ? stable + 1 : 0;
    count = now;
  }
  if (count <= 0) {
    log(`no CPU profiles appeared in ${dir}`);
    return undefined;
  }
  const report = cpuReport(dir, committed, loadGeneratorCpuMs);
  log(formatCpuReport(report));
  return report;
}

async function main(): Promise<void> {
  log('measuring ed25519 verification on one core');
  const verifyPerSec = measureVerifyRate(1000);
  const dataDir = mkdtempSync(join(tmpdir(), 'cloister-bench-'));
  log(nodes === 1 ? `starting a fresh node in ${dataDir}` : `starting a fresh ${nodes}-node devnet in ${dataDir}`);
  let chain: BenchChain | undefined;
  const cleanUp = (): void => {
    if (values.keep) log(`data directory kept: ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  };
  // Ctrl-C: stop the chain (a devnet stops its nodes) rather than leave it running.
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping`);
    void (chain?.stop() ?? Promise.resolve()).finally(() => {
      cleanUp();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (values.profile) {
    mkdirSync(values.profile, { recursive: true });
    // Window marks left by an earlier run would start and stop the new profilers at once.
    for (const mark of ['start', 'stop']) rmSync(join(values.profile, mark), { force: true });
  }
  try {
    chain = await startChain({
      root: projectRoot(),
      nodes,
      dataDir,
      ...(values.profile ? { profileDir: resolve(values.profile) } : {}),
      ...(confidential ? { extraContracts: [privateTokenDir(projectRoot())] } : {}),
      log,
    });
    try {
      await run(chain, verifyPerSec);
    } catch (err) {
      log(chain.failureReport());
      throw err;
    } finally {
      await chain.stop();
    }
  } finally {
    cleanUp();
  }
}

main().catch((err: unknown) => {
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}${cause}\n`);
  process.exit(1);
});
