/**
 * `npm run bench -- --gas`: how long a contract call can run at the maximum gas
 * limit, and what ordinary calls cost.
 *
 * For every adversarial shape of gas-shapes.ts, a read-only call that repeats the
 * shape on its large input until the gas runs out, at maxGasLimit (50,000,000):
 * the first such call in this process (engine code it has not run before is still
 * V8's baseline compilation then, and its compilation is part of the time) and the
 * best of the next runs, as wall time and as this process's CPU time (on a shared
 * machine wall time includes waiting for a core). Then the per-call cost of
 * counter.increment and token.transfer (best and median over rounds of calls).
 */
import { join } from 'node:path';
import { DEFAULT_TX_LIMITS, type JsonValue } from '../../consensus/index.js';
import { loadBundleFromDir, parseBundle, type ContractBundle } from '../../contracts/bundle/index.js';
import { ContractRuntime, type CallContext, type CallOutcome, type StateAccess } from '../../contracts/sandbox/index.js';
import { GAS_SHAPES, GAS_SHAPES_MANIFEST, gasShapesCode } from './gas-shapes.js';

export interface GasBoundRow {
  shape: string;
  what: string;
  /** 'OUT_OF_GAS' when the call used the whole limit (the intended end), else its outcome. */
  outcome: string;
  gasUsed: number;
  /** The first call of this shape in the process. */
  firstWallMs: number;
  firstCpuMs: number;
  /** Best of the following calls. */
  wallMs: number;
  cpuMs: number;
  /** Best CPU time per gas unit. */
  nsPerGas: number;
}

export interface PerCallCost {
  bestUs: number;
  medianUs: number;
  gasUsed: number;
}

export interface GasBenchResult {
  maxGasLimit: number;
  shapes: GasBoundRow[];
  worstWallMs: number;
  worstCpuMs: number;
  counterIncrement: PerCallCost;
  tokenTransfer: PerCallCost;
}

class MapState implements StateAccess {
  readonly data = new Map<string, JsonValue>();
  get(key: string): JsonValue | null {
    return this.data.get(key) ?? null;
  }
  set(key: string, value: JsonValue): void {
    this.data.set(key, value);
  }
  delete(key: string): void {
    this.data.delete(key);
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function timed(fn: () => CallOutcome): { outcome: CallOutcome; wallMs: number; cpuMs: number } {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const outcome = fn();
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { outcome, wallMs, cpuMs: (used.user + used.system) / 1000 };
}

function measureShapes(runtime: ContractRuntime, runs: number, log: (msg: string) => void): GasBoundRow[] {
  const bundle = parseBundle({ manifest: GAS_SHAPES_MANIFEST, code: gasShapesCode() });
  const ctx: CallContext = { contract: GAS_SHAPES_MANIFEST.name, caller: '00'.repeat(32), blockHeight: 1, blockTime: 0, readonly: true };
  const limit = DEFAULT_TX_LIMITS.maxGasLimit;
  const problem = runtime.validate(bundle);
  if (problem) throw new Error(`the shapes bundle does not load: ${problem.message}`);
  const rows: GasBoundRow[] = [];
  for (const shape of GAS_SHAPES) {
    const call = (): CallOutcome => runtime.call(bundle, 'run', [shape.name, shape.big, 1_000_000_000], ctx, limit, new MapState());
    const first = timed(call);
    let wallMs = Number.POSITIVE_INFINITY;
    let cpuMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < runs; i++) {
      const run = timed(call);
      wallMs = Math.min(wallMs, run.wallMs);
      cpuMs = Math.min(cpuMs, run.cpuMs);
    }
    const { outcome } = first;
    const row: GasBoundRow = {
      shape: shape.name,
      what: shape.what,
      outcome: outcome.error?.code ?? outcome.status,
      gasUsed: outcome.gasUsed,
      firstWallMs: round1(first.wallMs),
      firstCpuMs: round1(first.cpuMs),
      wallMs: round1(wallMs),
      cpuMs: round1(cpuMs),
      nsPerGas: round1((cpuMs * 1e6) / outcome.gasUsed),
    };
    rows.push(row);
    log(
      `${row.shape.padEnd(19)} ${row.outcome.padEnd(11)} gas ${String(row.gasUsed).padStart(10)}` +
        `  first wall/cpu ${row.firstWallMs.toFixed(0).padStart(5)} /${row.firstCpuMs.toFixed(0).padStart(5)} ms` +
        `  best ${row.wallMs.toFixed(0).padStart(5)} /${row.cpuMs.toFixed(0).padStart(5)} ms  ${row.nsPerGas.toFixed(1)} ns/gas  (${row.what})`,
    );
  }
  return rows;
}

/** Microseconds per call over rounds of `perRound` calls, after a warm-up. */
function perCall(call: () => CallOutcome, rounds = 7, perRound = 2000): PerCallCost {
  const check = call();
  if (check.status !== 'success') throw new Error(`benchmark call failed: ${check.error?.code} ${check.error?.message}`);
  for (let i = 0; i < perRound; i++) call();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < perRound; i++) call();
    samples.push(((performance.now() - start) * 1000) / perRound);
  }
  samples.sort((x, y) => x - y);
  return { bestUs: round1(samples[0]!), medianUs: round1(samples[Math.floor(rounds / 2)]!), gasUsed: check.gasUsed };
}

async function measureExamples(runtime: ContractRuntime, root: string): Promise<{ counterIncrement: PerCallCost; tokenTransfer: PerCallCost }> {
  const load = (name: string): Promise<ContractBundle> => loadBundleFromDir(join(root, 'contracts/examples', name));
  const [counter, token] = await Promise.all([load('counter'), load('token')]);
  const alice = 'a1'.repeat(32);
  const bob = 'b0'.repeat(32);
  const state = new MapState();
  state.set(`balance:${alice}`, Number.MAX_SAFE_INTEGER);
  const ctx = (contract: string): CallContext => ({ contract, caller: alice, blockHeight: 1, blockTime: 0, readonly: false });
  const counterCtx = ctx('counter');
  const tokenCtx = ctx('token');
  return {
    counterIncrement: perCall(() => runtime.call(counter, 'increment', [], counterCtx, 1_000_000, state)),
    tokenTransfer: perCall(() => runtime.call(token, 'transfer', [bob, 1], tokenCtx, 1_000_000, state)),
  };
}

export async function measureGasBounds(options: { root: string; runs: number; log: (msg: string) => void }): Promise<GasBenchResult> {
  const runtime = await ContractRuntime.create({ maxCachedBundles: 3 });
  try {
    options.log(`each shape repeated until it runs out of gas at the maximum gas limit, ${DEFAULT_TX_LIMITS.maxGasLimit}`);
    const shapes = measureShapes(runtime, options.runs, options.log);
    const examples = await measureExamples(runtime, options.root);
    options.log(`counter.increment ${examples.counterIncrement.bestUs} / ${examples.counterIncrement.medianUs} us (best / median), ${examples.counterIncrement.gasUsed} gas`);
    options.log(`token.transfer ${examples.tokenTransfer.bestUs} / ${examples.tokenTransfer.medianUs} us (best / median), ${examples.tokenTransfer.gasUsed} gas`);
    return {
      maxGasLimit: DEFAULT_TX_LIMITS.maxGasLimit,
      shapes,
      worstWallMs: Math.max(...shapes.map((s) => Math.max(s.firstWallMs, s.wallMs))),
      worstCpuMs: Math.max(...shapes.map((s) => Math.max(s.firstCpuMs, s.cpuMs))),
      ...examples,
    };
  } finally {
    runtime.dispose();
  }
}
