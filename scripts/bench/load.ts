import { txHash, type SignedTx } from '../../consensus/index.js';
import { rpcBatch, rpcCall } from './rpc.js';

/** Requests one stream keeps in flight at a rate (the node's per-client limit is 32; streams on one node share it). */
const MAX_IN_FLIGHT_PER_STREAM = 16;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A signed transaction with its hash, so it can be watched for before its node even answers. */
export interface PreparedTx {
  tx: SignedTx;
  hash: string;
}

export function prepare(tx: SignedTx): PreparedTx {
  return { tx, hash: txHash(tx) };
}

/** One client stream: sends its transactions in order, in batches, always to the same node. */
export interface Stream {
  /** Index into LoadOptions.urls. */
  node: number;
  txs: PreparedTx[];
}

export interface LoadOptions {
  /** Node i's JSON-RPC URL. */
  urls: string[];
  streams: Stream[];
  durationS: number;
  /** Seconds of load sent before the measured window (not counted: the nodes and the client warm up). */
  warmupS?: number;
  /** Offered tx/s over all streams; 0 = as fast as the nodes take them. */
  rate: number;
  batchSize: number;
  /** How often a watcher asks its node for a new head while there is none. */
  pollMs: number;
  log(msg: string): void;
  /** Called when the load starts and when the sending stops (before the drain), e.g. to bracket CPU profiles. */
  onWindow?(event: 'start' | 'stop'): void;
}

export interface LoadResult {
  /** Transactions committed inside the measured window, per second (counted on node 0's blocks). */
  txPerSec: number;
  /** Transactions committed inside the measured window (counted on node 0's blocks). */
  committedInWindow: number;
  /** CPU time the load generator (this process) used while sending. */
  loadGeneratorCpuMs: number;
  /** Every send-to-commit latency (ms), observed on the node the transaction was sent to, sorted. */
  latencies: number[];
  /** Per measured transaction, how long its node took to answer chain_sendTransaction (ms, the last attempt), sorted. */
  ackLatencies: number[];
  /**
   * With a rate: every latency counted from when the schedule meant to send the transaction, sorted. The
   * same as `latencies` unless the client fell behind its schedule (a stream at its bound of requests in
   * flight), a wait that `latencies`, counted from the actual send, would leave out.
   */
  scheduledLatencies: number[];
  neverCommitted: number;
  rejected: number;
  firstRejection: string;
}

/**
 * Drives the streams for durationS seconds (at `rate` tx/s if given), then waits
 * up to 30 s for what was accepted to commit. A watcher per node polls its head
 * and reads every new block: a transaction's latency runs from just before its
 * batch was sent to the first observation of its block on the node it was sent
 * to; node 0's watcher also timestamps every committed transaction for the
 * throughput count (all nodes hold the same blocks).
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  /** Per node: hash → when it was sent there, until its block is seen there. */
  const pending = o.urls.map(() => new Map<string, number>());
  const latencies: number[] = [];
  const ackLatencies: number[] = [];
  const scheduledLatencies: number[] = [];
  /** Per node: hash → when the schedule meant to send it (with a rate). */
  const scheduled = o.urls.map(() => new Map<string, number>());
  const commitTimes: number[] = [];
  let rejected = 0;
  let retried = 0;
  let firstRejection = '';
  let drained = false;
  /** Transactions sent before this (the warm-up) are sent and awaited, not measured. */
  let measureFrom = Infinity;
  const waiting = (): number => pending.reduce((n, m) => n + m.size, 0);

  const watch = async (node: number, fromHeight: number): Promise<void> => {
    const url = o.urls[node]!;
    const mine = pending[node]!;
    let height = fromHeight;
    while (!drained) {
      const head = await rpcCall<number>(url, 'chain_blockNumber');
      if (head <= height) {
        await sleep(o.pollMs);
        continue;
      }
      const calls = [];
      for (let h = height + 1; h <= head; h++) calls.push({ method: 'chain_getBlockByNumber', params: [h, false] });
      const replies = await rpcBatch(url, calls);
      const now = performance.now();
      for (const reply of replies) {
        const block = reply.result as { transactions: string[] } | null;
        for (const hash of block?.transactions ?? []) {
          if (node === 0) commitTimes.push(now);
          const sentAt = mine.get(hash);
          if (sentAt === undefined) continue;
          mine.delete(hash);
          if (sentAt >= measureFrom) latencies.push(now - sentAt);
          const meant = scheduled[node]!.get(hash);
          if (meant !== undefined) {
            scheduled[node]!.delete(hash);
            if (sentAt >= measureFrom) scheduledLatencies.push(now - meant);
          }
        }
      }
      height = head;
    }
  };

  const startHeights = await Promise.all(o.urls.map((url) => rpcCall<number>(url, 'chain_blockNumber')));
  let watchError: unknown;
  const watchers = o.urls.map((_, i) =>
    watch(i, startHeights[i]!).catch((err: unknown) => {
      watchError ??= err;
    }),
  );
  let loadGeneratorCpuMs = 0;
  const t0 = performance.now();
  measureFrom = t0 + (o.warmupS ?? 0) * 1000;
  const deadline = measureFrom + o.durationS * 1000;
  // The window (CPU profiles, the load generator's CPU) opens when the warm-up ends.
  let cpuAtStart = process.cpuUsage();
  const openWindow = (): void => {
    o.onWindow?.('start');
    cpuAtStart = process.cpuUsage();
  };
  const windowOpens = measureFrom > t0 ? setTimeout(openWindow, measureFrom - t0) : undefined;
  if (!windowOpens) openWindow();
  const progress = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000;
    o.log(`t=${elapsed.toFixed(1)}s${performance.now() < measureFrom ? ' (warm-up)' : ''} committed=${latencies.length} waiting=${waiting()} rejected=${rejected} resent=${retried}`);
  }, 1000);

  const perStreamRate = o.rate > 0 ? o.rate / o.streams.length : 0;
  try {
    await Promise.all(
      o.streams.map(async ({ node, txs }) => {
        const url = o.urls[node]!;
        const mine = pending[node]!;
        const send = async (i: number): Promise<void> => {
          let batch = txs.slice(i, i + o.batchSize);
          const sentAt = performance.now();
          for (const { hash } of batch) mine.set(hash, sentAt);
          if (perStreamRate > 0) for (const { hash } of batch) scheduled[node]!.set(hash, t0 + (i / perStreamRate) * 1000);
          // Like a real client: what a full mempool refused is sent again after a
          // short pause (in order, so a sender's later nonces do not wait for a
          // gap forever); anything else refused is counted and dropped.
          for (let attempt = 0; batch.length > 0; attempt++) {
            const askedAt = performance.now();
            const replies = await rpcBatch(url, batch.map(({ tx }) => ({ method: 'chain_sendTransaction', params: [tx] })));
            if (sentAt >= measureFrom) for (let k = 0; k < batch.length; k++) ackLatencies.push(performance.now() - askedAt);
            const retry: typeof batch = [];
            replies.forEach((reply, k) => {
              if (!reply.error) return;
              const code = (reply.error.data as { code?: string } | undefined)?.code;
              if (code === 'MEMPOOL_FULL' && performance.now() < deadline) {
                retry.push(batch[k]!);
                return;
              }
              rejected++;
              firstRejection ||= reply.error.message;
              mine.delete(batch[k]!.hash);
            });
            if (retry.length > 0) {
              retried += retry.length;
              await sleep(Math.min(200, 20 * 2 ** attempt));
            }
            batch = retry;
          }
        };
        // As fast as possible: one request at a time per stream (the node's answer paces it). At a rate:
        // each request goes out on its schedule whether or not the ones before it were answered (up to
        // MAX_IN_FLIGHT_PER_STREAM), as independent clients would send; a later nonce that overtakes an
        // earlier one waits in the mempool for it.
        const inFlight = new Set<Promise<void>>();
        // A request that failed ends the stream, as it would in the one-at-a-time loop (caught here so that
        // it is never an unhandled rejection while the stream sleeps; the bench then stops its nodes).
        let failure: { error: unknown } | undefined;
        for (let i = 0; i < txs.length && !failure; i += o.batchSize) {
          if (performance.now() >= deadline) break;
          if (perStreamRate === 0) {
            await send(i);
            continue;
          }
          const wait = t0 + (i / perStreamRate) * 1000 - performance.now();
          if (wait > 0) await sleep(wait);
          while (inFlight.size >= MAX_IN_FLIGHT_PER_STREAM) await Promise.race(inFlight);
          const request: Promise<void> = send(i)
            .catch((error: unknown) => void (failure ??= { error }))
            .finally(() => inFlight.delete(request));
          inFlight.add(request);
        }
        await Promise.all(inFlight);
        if (failure) throw failure.error;
      }),
    );
    o.onWindow?.('stop');
    const cpu = process.cpuUsage(cpuAtStart);
    loadGeneratorCpuMs = (cpu.user + cpu.system) / 1000;
    const seconds = (performance.now() - measureFrom) / 1000;
    o.log(`load generator CPU while sending: ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s in ${seconds.toFixed(1)} s`);
    const drainDeadline = performance.now() + 30_000;
    while (waiting() > 0 && performance.now() < drainDeadline && watchError === undefined) await sleep(20);
  } finally {
    drained = true;
    clearInterval(progress);
    clearTimeout(windowOpens);
  }
  await Promise.all(watchers);
  if (watchError !== undefined) throw watchError;

  const windowEnd = Math.min(deadline, performance.now());
  const inWindow = commitTimes.filter((t) => t >= measureFrom && t <= windowEnd).length;
  return {
    txPerSec: Math.round(inWindow / ((windowEnd - measureFrom) / 1000)),
    committedInWindow: inWindow,
    loadGeneratorCpuMs,
    latencies: latencies.sort((a, b) => a - b),
    ackLatencies: ackLatencies.sort((a, b) => a - b),
    scheduledLatencies: scheduledLatencies.sort((a, b) => a - b),
    neverCommitted: waiting(),
    rejected,
    firstRejection,
  };
}

/** The p-th quantile (0..1) of sorted values, rounded; 0 for none. */
export function percentile(sorted: number[], p: number): number {
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!) : 0;
}
