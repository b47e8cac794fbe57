/**
 * Entry point of the `trader` command and of `npm start` (trader run).
 * Runs under tsx so TypeScript (ours and the strategies a user drops in)
 * needs no build step.
 */
import { runCli } from './program.ts';

// `trader strategy list | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await runCli(process.argv);
// Let pending writes (stdout, log files) finish; exit only sets the code.
process.exitCode = code;
