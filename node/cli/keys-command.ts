import type { Command } from 'commander';
import { generateEd25519KeyPair } from '../../consensus/index.js';
import { KeyFileError, readKeyFile, writeKeyFile } from '../keys/key-file.js';
import { CliError } from './errors.js';

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('manage ed25519 keys for users and members');
  keys
    .command('new')
    .description('create a new key pair in a JSON key file (mode 0600)')
    .requiredOption('--out <file>', 'where to write the key file')
    .option('--force', 'overwrite an existing file', false)
    .action((opts: { out: string; force: boolean }) => {
      const pair = generateEd25519KeyPair();
      try {
        writeKeyFile(opts.out, pair, opts.force);
      } catch (err) {
        if (err instanceof KeyFileError) throw new CliError(err.message);
        throw new CliError(`cannot write ${opts.out}: ${(err as Error).message}`);
      }
      process.stdout.write(JSON.stringify({ publicKey: pair.publicKey, file: opts.out }) + '\n');
    });
  keys
    .command('show <file>')
    .description("print a key file's public key (the identity contracts see as the caller), never its private key")
    .action((file: string) => {
      let pair;
      try {
        // Read in full, so that a file whose public key does not match its private key is refused, not shown.
        pair = readKeyFile(file);
      } catch (err) {
        if (err instanceof KeyFileError) throw new CliError(err.message);
        throw err;
      }
      process.stdout.write(JSON.stringify({ type: pair.type, publicKey: pair.publicKey, file }) + '\n');
    });
}
