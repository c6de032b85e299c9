/**
 * What publishing events costs a Redis worker: the same drain (N no-op tasks enqueued in bulk,
 * then one worker of concurrency 100 runs them all) with events off, with events on and nobody
 * subscribed, and with events on while a `stem events --json` process listens. Modes alternate
 * within each run; the median of the runs is printed.
 *
 *   npx tsx bench/events-overhead.ts [--n 20000] [--runs 3]
 *   env: BENCH_REDIS_URL (redis://127.0.0.1:6379/12)
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { events } from '../plugins/events/index.js';
import { redis } from '../plugins/redis/index.js';
import { defineTask, Stem } from '../sdk/index.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' }, runs: { type: 'string', default: '3' } } });
const n = Number(values.n);
const runs = Number(values.runs);
const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/12';
const namespace = `bench-events-${randomBytes(3).toString('hex')}`;
const queue = 'bench-events';
const noop = defineTask({ name: 'bench.noop', handler: () => null });

type Mode = 'off' | 'on, nobody listening' | 'on, stem events listening';
const modes: Mode[] = ['off', 'on, nobody listening', 'on, stem events listening'];

/** Tasks/s (wall clock) and this process's CPU µs per task (user + system) over one drain. */
async function drain(stem: Stem, withEvents: boolean): Promise<{ rate: number; cpuPerTask: number }> {
  for (let sent = 0; sent < n; sent += 1000) {
    await stem.enqueueMany(Array.from({ length: Math.min(1000, n - sent) }, () => ({ task: noop, args: {}, options: { queue } })));
  }
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    const off = stem.signals.on('task-succeeded', () => {
      if (++done === n) {
        off();
        resolve();
      }
    });
  });
  const worker = stem.worker({ queues: [queue], concurrency: 100, events: withEvents });
  const started = performance.now();
  const cpu = process.cpuUsage();
  await worker.start();
  await finished;
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await worker.stop();
  return { rate: (n / elapsed) * 1000, cpuPerTask: (used.user + used.system) / n };
}

async function listener(): Promise<() => Promise<void>> {
  const bin = fileURLToPath(new URL('../bin/stem.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [bin, 'events', '--json', '--broker', `${url}?namespace=${namespace}`, '--backend', `${url}?namespace=${namespace}`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, STEM_BROKER_URL: '', STEM_RESULT_BACKEND_URL: '' },
    },
  );
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (chunk) => {
      err += chunk;
      if (/listening for events/.test(err)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`stem events exited ${code}: ${err}`)));
  });
  return async () => {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    await exited;
  };
}

const stem = await Stem.create({ plugins: [redis({ url, namespace }), events()], tasks: [noop] });
const results = new Map<Mode, number[]>(modes.map((mode) => [mode, []]));
const cpuResults = new Map<Mode, number[]>(modes.map((mode) => [mode, []]));
try {
  await drain(stem, false); // warm-up
  for (let run = 1; run <= runs; run++) {
    for (const mode of run % 2 === 1 ? modes : [...modes].reverse()) {
      const stop = mode === 'on, stem events listening' ? await listener() : undefined;
      const { rate, cpuPerTask } = await drain(stem, mode !== 'off');
      await stop?.();
      results.get(mode)!.push(rate);
      cpuResults.get(mode)!.push(cpuPerTask);
      console.log(
        `run ${run}/${runs}, events ${mode}: ${Math.round(rate).toLocaleString('en-US')} tasks/s, ${cpuPerTask.toFixed(1)} µs CPU per task`,
      );
    }
  }
} finally {
  await stem.broker.purge(queue).catch(() => undefined);
  await stem.close();
  const admin = new Redis(url);
  for (const pattern of [`${namespace}:*`, `{${namespace}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  }
  admin.disconnect();
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const base = median(results.get('off')!);
const cpuBase = median(cpuResults.get('off')!);
for (const mode of modes) {
  const value = median(results.get(mode)!);
  const cpu = median(cpuResults.get(mode)!);
  console.log(
    `median, events ${mode}: ${Math.round(value).toLocaleString('en-US')} tasks/s (${(((value - base) / base) * 100).toFixed(1)}% vs off), ` +
      `${cpu.toFixed(1)} µs CPU per task (${(((cpu - cpuBase) / cpuBase) * 100).toFixed(1)}% vs off)`,
  );
}
