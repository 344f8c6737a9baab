/**
 * Where the CPU goes: reads the per-thread profiles cpu-profile.ts wrote for a
 * load window and splits each thread's real CPU time (from /proc, not the
 * profile's wall-clock samples) among the node's components, in proportion to
 * the thread's non-idle samples.
 *
 * A sample belongs to the first component found walking its stack from the
 * leaf towards the root. Frames that do not say whose work they are (builtins
 * such as JSON.parse, Node's internals, canonical encoding, hashing, byte
 * helpers) are passed over, so their time goes to the component that called
 * them: JSON.parse under the RPC server is RPC, under the enclave's ecall
 * dispatch it is a host-enclave message. A sample with no component frame goes
 * to its thread's own component (the enclave thread executes, the verifier
 * threads verify) or, on a node's main thread, to "runtime".
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const COMPONENTS = [
  'verification',
  'execution',
  'storage',
  'gossip and its crypto',
  'host-enclave messages',
  'consensus',
  'mempool',
  'blocks and sync',
  'JSON-RPC',
  'metrics and logs',
  'garbage collection',
  'runtime',
  'load generator',
] as const;
export type Component = (typeof COMPONENTS)[number];

/** Ordered: the first rule whose pattern the frame's URL contains names the frame's component. */
const RULES: readonly [Component, readonly string[]][] = [
  ['verification', ['consensus/crypto/ed25519', 'node:internal/crypto/sig', 'verifier-worker', 'verifier-pool']],
  ['host-enclave messages', ['contracts/enclave/worker', 'node/enclave/', 'node:internal/worker', 'node:internal/per_context/messageport']],
  ['execution', ['contracts/', 'quickjs', 'wasm://']],
  ['storage', ['classic-level', 'abstract-level', 'level-transcoder', 'module-error', 'node/storage/']],
  [
    'gossip and its crypto',
    [
      '@chainsafe/', '@libp2p/', '/libp2p/', '@noble/ciphers', 'it-', 'uint8arraylist', 'protons-runtime', 'uint8-varint',
      'node/network/', 'node/admission/', 'multiformats', 'p-queue', 'race-signal', 'progress-events', 'node:net', 'stream_base_commons',
    ],
  ],
  ['consensus', ['consensus/bft', 'node/consensus/']],
  ['mempool', ['node/mempool/']],
  ['blocks and sync', ['node/chain/']],
  ['JSON-RPC', ['node/rpc/', 'node:_http', 'node/client/']],
  ['metrics and logs', ['prom-client', 'node/metrics/', 'node/log/', 'pino']],
];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}
interface ThreadInfo {
  pid: number;
  threadId: number;
  isMainThread: boolean;
  argv: string[];
  cpuMs: number | null;
}

function componentOfUrl(url: string): Component | undefined {
  for (const [component, patterns] of RULES) if (patterns.some((p) => url.includes(p))) return component;
  return undefined;
}

function threadDefault(info: ThreadInfo): Component {
  const script = info.argv[0] ?? '';
  if (script.includes('verifier-worker')) return 'verification';
  if (!info.isMainThread) return 'execution';
  return 'runtime';
}

/** CPU ms per component for one thread: its real CPU split by its samples. */
export function threadBreakdown(profile: Profile, info: ThreadInfo): Map<Component, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fallback = threadDefault(info);
  const memo = new Map<number, Component | null>();
  const classify = (id: number): Component | null => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    const name = node.callFrame.functionName;
    let result: Component | null;
    if (name === '(idle)') result = null;
    else if (name === '(garbage collector)') result = 'garbage collection';
    else if (name === '(program)' || name === '(root)') result = fallback;
    // The profiler's own start and stop are not the node's work.
    else if (node.callFrame.url.includes('scripts/bench/cpu-profile')) result = null;
    else {
      const own = componentOfUrl(node.callFrame.url);
      const up = parent.get(id);
      result = own ?? (up === undefined ? fallback : classify(up));
    }
    memo.set(id, result);
    return result;
  };
  const sampled = new Map<Component, number>();
  let total = 0;
  profile.samples.forEach((id, k) => {
    const c = classify(id);
    const dt = profile.timeDeltas[k] ?? 0;
    if (c === null || dt <= 0) return;
    sampled.set(c, (sampled.get(c) ?? 0) + dt);
    total += dt;
  });
  // The samples' times are wall-clock; the thread's real CPU (when known) is what is split.
  const cpuMs = info.cpuMs ?? total / 1000;
  const out = new Map<Component, number>();
  if (total > 0) for (const [c, t] of sampled) out.set(c, (cpuMs * t) / total);
  return out;
}

export interface CpuReport {
  committed: number;
  totalCpuMs: number;
  rows: { component: Component; cpuMs: number; share: number; usPerTx: number }[];
}

/**
 * Reads every `pid-*-thread-*.cpuprofile` (with its `.json`) in `dir` and adds
 * the load generator's CPU, then expresses each component per committed transaction.
 */
export function cpuReport(dir: string, committed: number, loadGeneratorCpuMs: number): CpuReport {
  const totals = new Map<Component, number>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const base = join(dir, file.slice(0, -'.cpuprofile'.length));
    const profile = JSON.parse(readFileSync(`${base}.cpuprofile`, 'utf8')) as Profile;
    const info = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as ThreadInfo;
    for (const [c, ms] of threadBreakdown(profile, info)) totals.set(c, (totals.get(c) ?? 0) + ms);
  }
  totals.set('load generator', loadGeneratorCpuMs);
  const totalCpuMs = [...totals.values()].reduce((a, b) => a + b, 0);
  const rows = COMPONENTS.filter((c) => (totals.get(c) ?? 0) > 0).map((component) => {
    const cpuMs = totals.get(component)!;
    return { component, cpuMs: Math.round(cpuMs), share: cpuMs / totalCpuMs, usPerTx: committed > 0 ? Math.round((cpuMs * 1000) / committed) : 0 };
  });
  return { committed, totalCpuMs: Math.round(totalCpuMs), rows };
}

/** The report as a table for the terminal (and the README). */
export function formatCpuReport(r: CpuReport): string {
  const lines = [
    `CPU per committed transaction (${r.committed} committed, ${(r.totalCpuMs / 1000).toFixed(1)} s of CPU in the window)`,
    `| component | µs per tx | share |`,
    `|---|---:|---:|`,
    ...r.rows.map((row) => `| ${row.component} | ${row.usPerTx} | ${(row.share * 100).toFixed(0)} % |`),
    `| total | ${r.committed > 0 ? Math.round((r.totalCpuMs * 1000) / r.committed) : 0} | 100 % |`,
  ];
  return lines.join('\n');
}
