import { rmSync } from 'node:fs';
import { findDevnetProcesses, removePidFile, type DevnetProcess, type StalePidFile } from './devnet-processes.js';

/**
 * Stops the devnet running in a directory, from its pid files alone (what
 * `cloister devnet stop` does): first the supervisor, with SIGTERM, so that it
 * stops its nodes in order as on Ctrl-C and does not report them as deaths;
 * then any node still running (a supervisor killed with SIGKILL left it, or
 * there is no supervisor), also with SIGTERM. Whatever still runs after the
 * grace period gets SIGKILL. Pid files that name no process of this devnet
 * (stale, or a pid now used by another process) are removed and that process
 * is left alone.
 */

export interface StopDevnetOptions {
  /** How long each process may take to stop after SIGTERM before SIGKILL. Default 15 s (a devnet gives its nodes 10 s). */
  graceMs?: number;
}

export interface StoppedProcess {
  name: string;
  pid: number;
  /**
   * 'SIGTERM'; 'SIGKILL': it was still running after the grace period; 'devnet': its supervisor
   * stopped it; 'exited': it was gone by the time its turn came.
   */
  how: 'SIGTERM' | 'SIGKILL' | 'devnet' | 'exited';
}

export interface UnstoppableProcess {
  name: string;
  pid: number;
  reason: string;
}

export interface StopDevnetOutcome {
  stopped: StoppedProcess[];
  /** Pid files removed because they named no process of this devnet. */
  stale: StalePidFile[];
  /** Processes that are still running (no permission to signal them, or SIGKILL did not end them). */
  failed: UnstoppableProcess[];
}

const POLL_MS = 50;
/** After SIGKILL the kernel needs a moment; a process still there after this is reported. */
const AFTER_KILL_MS = 5_000;

async function exited(proc: DevnetProcess, withinMs: number): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (proc.isRunning()) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

/** Sends a signal; the error's code when it could not be sent to a running process. */
function signal(proc: DevnetProcess, sig: NodeJS.Signals): string | undefined {
  try {
    process.kill(proc.pid, sig);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return code === 'ESRCH' ? undefined : code;
  }
}

type StopResult = { stopped: StoppedProcess } | { failed: UnstoppableProcess };

/**
 * SIGTERM, the grace period, then SIGKILL; the process's identity is checked
 * again before each signal. `goneMeans` says who stopped a process that is
 * already gone when its turn comes.
 */
async function stopProcess(proc: DevnetProcess, graceMs: number, goneMeans: StoppedProcess['how']): Promise<StopResult> {
  const { name, pid } = proc;
  let how = goneMeans;
  if (proc.isRunning()) {
    how = 'SIGTERM';
    let refused = signal(proc, 'SIGTERM');
    if (!refused && !(await exited(proc, graceMs)) && proc.isRunning()) {
      how = 'SIGKILL';
      refused = signal(proc, 'SIGKILL');
      if (!refused && !(await exited(proc, AFTER_KILL_MS))) refused = 'still running after SIGKILL';
    }
    if (refused) return { failed: { name, pid, reason: refused } };
  }
  removePidFile(proc.pidFile, pid);
  return { stopped: { name, pid, how } };
}

export async function stopDevnet(dataDir: string, options: StopDevnetOptions = {}): Promise<StopDevnetOutcome> {
  const graceMs = options.graceMs ?? 15_000;
  const found = findDevnetProcesses(dataDir);
  const outcome: StopDevnetOutcome = { stopped: [], stale: found.stale, failed: [] };
  const record = (result: StopResult): void => {
    if ('stopped' in result) outcome.stopped.push(result.stopped);
    else outcome.failed.push(result.failed);
  };
  for (const stale of found.stale) rmSync(stale.pidFile, { force: true });
  if (found.supervisor) record(await stopProcess(found.supervisor, graceMs, 'exited'));
  // A supervisor that stopped in order took its nodes with it: those report as stopped by the devnet.
  const nodes = await Promise.all(found.nodes.map((node) => stopProcess(node, graceMs, found.supervisor ? 'devnet' : 'exited')));
  nodes.forEach(record);
  return outcome;
}
