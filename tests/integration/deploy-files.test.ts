/**
 * The deployment files: docker-compose.prod.yml and the Dockerfile are
 * checked statically (there is no Docker engine in CI), and entrypoint.sh is
 * run for real outside Docker: it must migrate, then exec node so that the
 * bot has the shell's pid and receives SIGTERM itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function readRoot(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8');
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function dockerInstructions(text: string): { op: string; args: string }[] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const out: { op: string; args: string }[] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

describe('docker-compose.prod.yml', () => {
  const doc: unknown = parse(readRoot('docker-compose.prod.yml'));
  const services = isRecord(doc) ? doc.services : undefined;
  const trader = isRecord(services) ? services.trader : undefined;

  it('defines the trader service', () => {
    expect(isRecord(trader)).toBe(true);
  });

  it('restarts unless stopped and reads .env', () => {
    if (!isRecord(trader)) throw new Error('no trader service');
    expect(trader.restart).toBe('unless-stopped');
    const envFile: unknown[] = Array.isArray(trader.env_file) ? trader.env_file : [trader.env_file];
    const names = envFile.map((e) => (isRecord(e) ? e.path : e));
    expect(names).toContain('.env');
  });

  it('mounts data, status, logs, config and strategies at /app/<same>', () => {
    if (!isRecord(trader)) throw new Error('no trader service');
    const volumes: unknown = trader.volumes;
    expect(Array.isArray(volumes)).toBe(true);
    const mounts = new Map<string, string>();
    for (const v of volumes as unknown[]) {
      if (typeof v === 'string') {
        const [source, target] = v.split(':');
        if (source !== undefined && target !== undefined) mounts.set(target, source);
      } else if (isRecord(v) && typeof v.source === 'string' && typeof v.target === 'string') {
        mounts.set(v.target, v.source);
      }
    }
    for (const dir of ['data', 'status', 'logs', 'config', 'strategies']) {
      expect(mounts.get(`/app/${dir}`), `volume for /app/${dir}`).toBe(`./${dir}`);
    }
  });

  it('rotates logs with the json-file driver', () => {
    if (!isRecord(trader)) throw new Error('no trader service');
    const logging = trader.logging;
    if (!isRecord(logging)) throw new Error('no logging section');
    expect(logging.driver).toBe('json-file');
    const options = logging.options;
    if (!isRecord(options)) throw new Error('no logging options');
    expect(String(options['max-size'] ?? '')).not.toBe('');
    expect(String(options['max-file'] ?? '')).not.toBe('');
  });
});

describe('Dockerfile', () => {
  const instructions = dockerInstructions(readRoot('Dockerfile'));
  const all = (op: string): string[] => instructions.filter((i) => i.op === op).map((i) => i.args);

  it('is multi-stage', () => {
    expect(all('FROM').length).toBeGreaterThanOrEqual(2);
  });

  it('has a HEALTHCHECK that runs `trader status`', () => {
    const hc = all('HEALTHCHECK');
    expect(hc).toHaveLength(1);
    expect(hc[0]).toMatch(/\bCMD\b.*src\/cli\/main\.ts\s+status\b/);
  });

  it('runs as a user that is not root', () => {
    const users = all('USER');
    const last = users[users.length - 1];
    expect(last).toBeDefined();
    expect(last).not.toMatch(/^(root|0)(:|$)/);
  });

  it('uses entrypoint.sh as the ENTRYPOINT', () => {
    const ep = all('ENTRYPOINT');
    expect(ep.length).toBeGreaterThanOrEqual(1);
    expect(ep[ep.length - 1]).toMatch(/entrypoint\.sh/);
  });

  it('copies every folder and file the entrypoint needs into the runtime stage', () => {
    // Only the instructions after the last FROM end up in the image.
    const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
    const copied = instructions
      .slice(lastFrom + 1)
      .filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1))
      .map((a) => a.replace(/^\.\//, '').replace(/\/$/, ''));
    for (const needed of ['src', 'config', 'strategies', 'package.json', 'tsconfig.json', 'entrypoint.sh']) {
      expect(copied, `COPY of ${needed}`).toContain(needed);
    }
    const fromBuild = instructions.slice(lastFrom + 1).filter((i) => i.op === 'COPY' && /--from=/.test(i.args));
    expect(fromBuild.some((i) => /node_modules/.test(i.args))).toBe(true);
  });
});

describe('entrypoint.sh', () => {
  const tmpDirs: string[] = [];
  afterAll(() => {
    for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
  });

  it('is a POSIX sh script that execs node', () => {
    const text = readRoot('entrypoint.sh');
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toMatch(/^set -eu$/m);
    expect(text).toMatch(/^exec node --import tsx src\/cli\/main\.ts run "\$@"$/m);
  });

  it(
    'migrates, then execs the bot, which stops cleanly on SIGTERM',
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'trader-entrypoint-'));
      tmpDirs.push(tmp);
      const strategiesDir = join(tmp, 'strategies');
      mkdirSync(strategiesDir);
      const heartbeatFile = join(tmp, 'status', 'heartbeat.json');
      const dbFile = join(tmp, 'data', 'trader.db');

      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DB_URL: `sqlite:${dbFile}`,
        HEARTBEAT_PATH: heartbeatFile,
        HEARTBEAT_INTERVAL_MS: '200',
        LOG_DIR: join(tmp, 'logs'),
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
        MODE: 'sim',
        STRATEGIES_DIR: strategiesDir,
        // The script runs from the checkout: never read a developer's .env there.
        ENV_FILE: '/dev/null',
        // Never the default 7788: something else on the machine may hold it.
        CONTROL_PORT: '0',
      };
      delete env.CONFIG_FILE;

      // Run from another folder: the script must cd to its own.
      const child: ChildProcess = spawn('sh', [join(ROOT, 'entrypoint.sh')], { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      void exited.then((e) => (exitInfo = e));

      const readHeartbeat = (): Record<string, unknown> | undefined => {
        try {
          const json: unknown = JSON.parse(readFileSync(heartbeatFile, 'utf8'));
          return isRecord(json) ? json : undefined;
        } catch {
          return undefined; // not written yet
        }
      };
      // The pid the bot reports; differs from child.pid only if exec is missing.
      let botPid: number | undefined;
      const describeChild = (): string => `exit=${JSON.stringify(exitInfo)}\nstdout:\n${stdout}\nstderr:\n${stderr}`;

      try {
        expect(child.pid).toBeTypeOf('number');

        // Poll until the bot reports itself running (or dies, or time runs out).
        const deadline = Date.now() + 30_000;
        let hb = readHeartbeat();
        while (hb?.state !== 'running') {
          if (exitInfo) throw new Error(`entrypoint exited before the bot was running\n${describeChild()}`);
          if (Date.now() > deadline) throw new Error(`no "running" heartbeat within 30 s\n${describeChild()}`);
          await new Promise((r) => setTimeout(r, 50));
          hb = readHeartbeat();
        }

        if (typeof hb.pid === 'number') botPid = hb.pid;
        // Same pid as the shell we spawned: exec replaced sh with node.
        expect(hb.pid, describeChild()).toBe(child.pid);
        // `db migrate` ran first, on a fresh database.
        expect(stdout, describeChild()).toMatch(/^applied /m);

        expect(child.kill('SIGTERM')).toBe(true);
        const { code, signal } = await exited;
        expect({ code, signal }, describeChild()).toEqual({ code: 0, signal: null });

        const final = readHeartbeat();
        expect(final?.state).toBe('stopped');
        expect(final?.pid).toBe(child.pid);
        expect(existsSync(dbFile)).toBe(true);
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        // Without exec, node is a child of the shell and would outlive it.
        if (botPid !== undefined && botPid !== child.pid) {
          try {
            process.kill(botPid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    },
    60_000,
  );
});
