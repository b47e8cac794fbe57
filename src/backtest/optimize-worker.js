// Entry of an optimizer worker thread (see OptimizePool in optimize-pool.ts).
// A worker does not inherit a loader registered in code (src/cli/bin.js), so
// it registers tsx itself before loading the TypeScript module.
import { register } from 'tsx/esm/api';

register();
const { serveOptimizeWorker } = await import('./optimize-task.ts');
serveOptimizeWorker();
