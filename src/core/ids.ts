import { randomUUID } from 'node:crypto';

/** A random id for a process run, used to tell runs apart in logs and the journal. */
export function newRunId(): string {
  return randomUUID();
}
