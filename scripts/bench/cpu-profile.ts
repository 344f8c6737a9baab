/**
 * CPU profiles of a window, from every thread of every process that loads this
 * module first (`NODE_OPTIONS=--import <this file>`; preloads also run in worker
 * threads, so the enclave and its verifier threads are profiled too). The
 * devnet starts its node processes itself, and `--cpu-prof` is not allowed in
 * NODE_OPTIONS: this is how the benchmark profiles them.
 *
 * Does nothing unless CLOISTER_BENCH_PROFILE_DIR names a directory. Each thread
 * starts its profiler when the file `start` appears there and writes
 * `pid-<pid>-thread-<id>.cpuprofile` when `stop` appears (see markProfileWindow),
 * beside it `pid-<pid>-thread-<id>.json` with the CPU time the thread really
 * used in the window (Linux): the profile's sample times are wall-clock times
 * and count the time a thread waits for a core while others run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';

export const PROFILE_DIR_ENV = 'CLOISTER_BENCH_PROFILE_DIR';

/** Starts (`start`) or ends (`stop`) the profiled window of every thread watching `dir`. */
export function markProfileWindow(dir: string, mark: 'start' | 'stop'): void {
  writeFileSync(join(dir, mark), '');
}

/** CPU time (user + system, ms) of the calling thread so far, from /proc; undefined elsewhere. */
function threadCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

function watch(dir: string): void {
  let session: Session | undefined;
  let cpuAtStart: number | undefined;
  let wallAtStart = 0;
  const timer = setInterval(() => {
    if (!session && existsSync(join(dir, 'start'))) {
      session = new Session();
      session.connect();
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: 500 });
      session.post('Profiler.start');
      cpuAtStart = threadCpuMs();
      wallAtStart = performance.now();
    } else if (session && existsSync(join(dir, 'stop'))) {
      clearInterval(timer);
      const cpuAtStop = threadCpuMs();
      const wallMs = Math.round(performance.now() - wallAtStart);
      const s = session;
      s.post('Profiler.stop', (err, result) => {
        const name = join(dir, `pid-${process.pid}-thread-${threadId}`);
        if (!err) writeFileSync(`${name}.cpuprofile`, JSON.stringify(result.profile));
        const cpuMs = cpuAtStart !== undefined && cpuAtStop !== undefined ? cpuAtStop - cpuAtStart : null;
        writeFileSync(`${name}.json`, JSON.stringify({ pid: process.pid, threadId, isMainThread, argv: process.argv.slice(1), wallMs, cpuMs }) + '\n');
        s.disconnect();
      });
    }
  }, 50);
  timer.unref();
}

const dir = process.env[PROFILE_DIR_ENV];
if (dir) watch(dir);
