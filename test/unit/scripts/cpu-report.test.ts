import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpuReport, threadBreakdown } from '../../../scripts/bench/cpu-report.js';

/** A profile from stacks (root first) and how long each sample took (µs). */
function profile(samples: [stack: [name: string, url: string][], us: number][]) {
  const nodes = [{ id: 1, callFrame: { functionName: '(root)', url: '' }, children: [] as number[] }];
  const ids: number[] = [];
  for (const [stack] of samples) {
    let parent = nodes[0]!;
    for (const [functionName, url] of stack) {
      let child = parent.children.map((c) => nodes[c - 1]!).find((n) => n.callFrame.functionName === functionName && n.callFrame.url === url);
      if (!child) {
        child = { id: nodes.length + 1, callFrame: { functionName, url }, children: [] };
        nodes.push(child);
        parent.children.push(child.id);
      }
      parent = child;
    }
    ids.push(parent.id);
  }
  return { nodes, samples: ids, timeDeltas: samples.map(([, us]) => us) };
}

const MAIN = { pid: 1, threadId: 0, isMainThread: true, argv: ['dist/bin/cloister.js'], cpuMs: 100 };
const RPC = 'file:///p/dist/node/rpc/server.js';
const NOISE = 'file:///p/node_modules/@chainsafe/libp2p-noise/dist/index.js';

describe('cpu report', () => {
  it("splits a thread's real CPU by the first component frame from the leaf; builtins go to their caller", () => {
    const p = profile([
      [[['handle', RPC], ['parse', '']], 3000], // JSON.parse under the RPC server: RPC
      [[['decrypt', NOISE]], 1000],
      [[['(garbage collector)', '']], 1000],
      [[['(idle)', '']], 5000], // not work
      [[['tick', 'file:///p/dist/scripts/bench/cpu-profile.js'], ['post', 'node:inspector']], 5000], // the profiler itself
    ]);
    const split = threadBreakdown(p, MAIN);
    // 5 ms of samples count; the thread's 100 ms of real CPU is split in their proportions.
    expect(Object.fromEntries(split)).toEqual({ 'JSON-RPC': 60, 'gossip and its crypto': 20, 'garbage collection': 20 });
  });

  it("gives a sample with no component frame to its thread's own work", () => {
    const p = profile([[[['anonymous', 'node:internal/buffer']], 1000]]);
    expect(Object.fromEntries(threadBreakdown(p, { ...MAIN, isMainThread: false, argv: ['dist/contracts/enclave/verifier-worker.js'], cpuMs: 10 }))).toEqual({ verification: 10 });
    expect(Object.fromEntries(threadBreakdown(p, { ...MAIN, isMainThread: false, argv: ['dist/contracts/enclave/worker.js'], cpuMs: 10 }))).toEqual({ execution: 10 });
    expect(Object.fromEntries(threadBreakdown(p, MAIN))).toEqual({ runtime: 100 });
  });

  const dir = mkdtempSync(join(tmpdir(), 'cpu-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('adds every thread and the load generator, per committed transaction', () => {
    writeFileSync(join(dir, 'pid-1-thread-0.cpuprofile'), JSON.stringify(profile([[[['handle', RPC]], 1000]])));
    writeFileSync(join(dir, 'pid-1-thread-0.json'), JSON.stringify({ ...MAIN, cpuMs: 300 }));
    writeFileSync(join(dir, 'pid-2-thread-0.cpuprofile'), JSON.stringify(profile([[[['handle', RPC]], 1000]])));
    writeFileSync(join(dir, 'pid-2-thread-0.json'), JSON.stringify({ ...MAIN, pid: 2, cpuMs: 100 }));
    const report = cpuReport(dir, 1000, 100);
    expect(report.totalCpuMs).toBe(500);
    expect(report.rows).toEqual([
      { component: 'JSON-RPC', cpuMs: 400, share: 0.8, usPerTx: 400 },
      { component: 'load generator', cpuMs: 100, share: 0.2, usPerTx: 100 },
    ]);
  });
});
