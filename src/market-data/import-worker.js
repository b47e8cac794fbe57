// Entry of the import worker thread (see PrepareWorker in import.ts). A
// worker does not inherit a loader registered in code (src/cli/bin.js), so
// it registers tsx itself before loading the TypeScript module.
import { register } from 'tsx/esm/api';

register();
const { serveImportWorker } = await import('./import.ts');
serveImportWorker();
