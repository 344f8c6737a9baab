import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';

/**
 * The processes of a devnet, found from its directory: the supervisor's
 * (`cloister devnet`) pid in DIR/devnet.pid, node i's in DIR/node-i/node.pid.
 *
 * A pid file can outlive its process (SIGKILL, a crash, a reboot), and the pid
 * can then belong to any other process. So a pid counts only while the
 * process's command line (/proc/<pid>/cmdline; `ps` where there is no /proc)
 * is the one a devnet process of this directory has: node i runs
 * `… node start --config DIR/node-i/config.json` (the supervisor always passes
 * the absolute path), the supervisor `… cloister devnet [--data DIR]` with DIR
 * resolved against its working directory. Nothing here signals a process that
 * does not pass that check.
 */

export const SUPERVISOR_PID_FILE = 'devnet.pid';
export const NODE_PID_FILE = 'node.pid';

export function supervisorPidFile(dataDir: string): string {
  return join(resolve(dataDir), SUPERVISOR_PID_FILE);
}

/** Node i's config file, as prepareDevnet writes it and the supervisor passes it. */
export function nodeConfigFile(dataDir: string, index: number): string {
  return join(resolve(dataDir), `node-${index}`, 'config.json');
}

export function nodePidFile(dataDir: string, index: number): string {
  return join(resolve(dataDir), `node-${index}`, NODE_PID_FILE);
}

export function writePidFile(file: string, pid: number): void {
  writeFileSync(file, `${pid}\n`);
}

/** The pid a pid file names; undefined when there is no file or it does not hold a pid. */
export function readPidFile(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Removes a pid file only if it still names `pid` (another process may have written its own since). */
export function removePidFile(file: string, pid: number): void {
  if (readPidFile(file) === pid) rmSync(file, { force: true });
}

/** True while `pid` is a process that has not exited; a zombie (exited, not yet reaped) has. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return processState(pid) !== 'Z';
}

/** The state letter of /proc/<pid>/stat (R, S, Z, …); undefined where there is no /proc. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state …": comm may hold spaces and parentheses, so read after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** The argument vector of a live process; undefined when it is gone, a zombie, or cannot be read. */
export function commandLineOf(pid: number): string[] | undefined {
  if (existsSync('/proc/self')) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (args.at(-1) === '') args.pop();
      return args.length > 0 ? args : undefined;
    } catch {
      return undefined;
    }
  }
  // No /proc (macOS, BSD): ps joins the arguments with spaces, so a path with a space will not match (and is left alone).
  try {
    const line = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return line ? line.split(/\s+/) : undefined;
  } catch {
    return undefined;
  }
}

/** The working directory of a live process (Linux); undefined where it cannot be read. */
function workingDirectoryOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** The value of `--name VALUE` or `--name=VALUE` (the last one wins, as with commander). */
function optionValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  args.forEach((arg, i) => {
    if (arg === name && i + 1 < args.length) value = args[i + 1];
    else if (arg.startsWith(`${name}=`)) value = arg.slice(name.length + 1);
  });
  return value;
}

/** Whether two paths name the same file (through symbolic links, e.g. /tmp and /private/tmp). */
function samePath(a: string, b: string): boolean {
  const real = (path: string): string => {
    try {
      return realpathSync(path);
    } catch {
      return resolve(path);
    }
  };
  return resolve(a) === resolve(b) || real(a) === real(b);
}

/** Whether a command line is `cloister node start --config <configFile>` (however the program was named). */
export function runsNode(args: readonly string[], configFile: string): boolean {
  const start = args.indexOf('start');
  if (start < 1 || args[start - 1] !== 'node') return false;
  const config = optionValue(args.slice(start + 1), '--config');
  return config !== undefined && isAbsolute(config) && samePath(config, configFile);
}

const CLOISTER_ENTRIES = new Set(['cloister', 'cloister.js', 'main.js']);

/**
 * Whether a command line is `cloister devnet …` on `dataDir` (not `devnet stop`).
 * A relative --data (or none: the default .cloister-devnet) is resolved against
 * `cwd`; without a working directory only an absolute --data can match.
 */
export function runsDevnet(args: readonly string[], dataDir: string, cwd: string | undefined): boolean {
  const at = args.indexOf('devnet');
  if (at < 1 || !CLOISTER_ENTRIES.has(basename(args[at - 1]!)) || args[at + 1] === 'stop') return false;
  const data = optionValue(args.slice(at + 1), '--data') ?? '.cloister-devnet';
  if (isAbsolute(data)) return samePath(data, dataDir);
  return cwd !== undefined && samePath(resolve(cwd, data), dataDir);
}

/** A devnet process found through its pid file. */
export interface DevnetProcess {
  /** "devnet" for the supervisor, "node-i" for node i. */
  name: string;
  pid: number;
  pidFile: string;
  /** Checks again: false once the process has exited (even if its pid was taken by another process since). */
  isRunning(): boolean;
}

/** A pid file whose process is gone, or whose pid now belongs to another process. */
export interface StalePidFile {
  name: string;
  pid: number;
  pidFile: string;
  /** The command line of the other process now holding the pid; undefined when nothing does. */
  otherProcess?: string;
}

export interface DevnetProcesses {
  supervisor?: DevnetProcess;
  nodes: DevnetProcess[];
  stale: StalePidFile[];
}

/** The node indexes of DIR/node-i directories, in order. */
function nodeIndexes(dataDir: string): number[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir)
    .map((entry) => /^node-(\d+)$/.exec(entry))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Reads every pid file of the devnet in `dataDir` and sorts them into live devnet processes and stale files. */
export function findDevnetProcesses(dataDir: string): DevnetProcesses {
  const dir = resolve(dataDir);
  const found: DevnetProcesses = { nodes: [], stale: [] };
  const check = (name: string, pidFile: string, isOurs: (args: string[], pid: number) => boolean): DevnetProcess | undefined => {
    const pid = readPidFile(pidFile);
    if (pid === undefined) return undefined;
    const argsOf = (): string[] | undefined => (isAlive(pid) ? commandLineOf(pid) : undefined);
    const args = argsOf();
    if (args && isOurs(args, pid)) {
      return {
        name,
        pid,
        pidFile,
        isRunning: () => {
          const now = argsOf();
          // A process that is exiting has released its command line but not yet its
          // resources (ports, the database lock): it still runs until it is gone or a zombie.
          return now === undefined ? isAlive(pid) : isOurs(now, pid);
        },
      };
    }
    if (!args && isAlive(pid)) {
      // Running, but its command line cannot be read (another user's process, /proc mounted with hidepid).
      found.stale.push({ name, pid, pidFile, otherProcess: '(its command line cannot be read)' });
    } else {
      found.stale.push({ name, pid, pidFile, ...(args ? { otherProcess: args.join(' ') } : {}) });
    }
    return undefined;
  };
  const supervisor = check('devnet', supervisorPidFile(dir), (args, pid) => runsDevnet(args, dir, workingDirectoryOf(pid)));
  if (supervisor) found.supervisor = supervisor;
  for (const index of nodeIndexes(dir)) {
    const node = check(`node-${index}`, nodePidFile(dir, index), (args) => runsNode(args, nodeConfigFile(dir, index)));
    if (node) found.nodes.push(node);
  }
  return found;
}
