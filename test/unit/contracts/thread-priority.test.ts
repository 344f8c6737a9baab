import { readlinkSync } from 'node:fs';
import { getPriority, platform } from 'node:os';
import { describe, expect, it } from 'vitest';
import { INTAKE_THREAD_NICENESS, lowerThisThreadPriority } from '../../../contracts/enclave/thread-priority.js';

// vitest runs this file in a process of its own (pool: forks): lowering its thread's priority touches nothing else.
describe('intake thread priority', () => {
  it("lowers the calling thread's priority to the intake niceness on Linux; elsewhere says it did not", () => {
    if (platform() !== 'linux') {
      expect(lowerThisThreadPriority()).toBe(false);
      return;
    }
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    const before = getPriority(tid);
    // An unprivileged thread can lower its priority, not raise it back.
    expect(lowerThisThreadPriority()).toBe(before <= INTAKE_THREAD_NICENESS);
    expect(getPriority(tid)).toBe(Math.max(before, INTAKE_THREAD_NICENESS));
  });
});
