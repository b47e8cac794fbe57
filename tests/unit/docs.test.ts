/** Keeps .env.example and the README in step with the variables the bot reads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KNOWN_ENV_KEYS } from '../../src/settings/env-schema.ts';
import { loadSettings } from '../../src/settings/load-settings.ts';
import { PLANNED_GROUPS } from '../../src/cli/program.ts';
import { makeWorkspace, REPO_ROOT } from '../support/workspace.ts';

const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

describe('documentation', () => {
  it('.env.example sets every variable, and nothing else', () => {
    const names = [...example.matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect([...names].sort()).toEqual([...KNOWN_ENV_KEYS].sort());
  });

  it('.env.example, copied to .env as it is, is a valid configuration giving the defaults', () => {
    const ws = makeWorkspace();
    try {
      ws.write('.env', example);
      const s = loadSettings({ cwd: ws.dir, env: {} });
      expect(s.mode).toBe('sim');
      expect(s.heartbeatIntervalMs).toBe(2000);
    } finally {
      ws.cleanup();
    }
  });

  it('the README documents every variable and names npm start and npm test', () => {
    for (const key of KNOWN_ENV_KEYS) expect(readme, key).toContain(`| \`${key}\` |`);
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
    for (const [group] of PLANNED_GROUPS) expect(readme, group).toMatch(new RegExp(`\`(trader )?${group}\``));
  });

  it('.ci/run runs npm ci and then exactly the README test command', () => {
    const ci = readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});
