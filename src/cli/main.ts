/**
 * Entry point of the `trader` command and of `npm start` (trader run).
 * Runs under tsx so TypeScript (ours and the strategies a user drops in)
 * needs no build step.
 */
import { runCli } from './program.ts';

const code = await runCli(process.argv);
// Let pending writes (stdout, log files) finish; exit only sets the code.
process.exitCode = code;
