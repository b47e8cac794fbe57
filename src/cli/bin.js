#!/usr/bin/env node
// The `trader` executable (package.json "bin"). It registers tsx so the
// TypeScript sources, and strategies users drop into strategies/, run
// without a build step, then hands over to src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
