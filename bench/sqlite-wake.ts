// `npx tsx bench/sqlite-wake.ts parent /tmp/wake/w.db`: idle CPU of a waiting SQLite consumer in another
// process (10 s) and its wake latency over 100 publishes (the numbers in docs/sqlite.md).
// Idle CPU and cross-process wake latency of the SQLite consumer: a child process waits in fetch;
// this process publishes; the child prints when its fetch returned.
import { fork } from 'node:child_process';
import { SqliteBroker, SqliteConnection } from '../plugins/sqlite/index.js';
import { resolveSqliteOptions } from '../plugins/sqlite/sqlite-options.js';
import { makeEnvelope } from '../test/contract/support.js';
const file = process.argv[3] ?? '/tmp/stem-sqlite-wake/w.db';
if (process.argv[2] !== 'child') (await import('node:fs')).mkdirSync((await import('node:path')).dirname(file), { recursive: true });
if (process.argv[2] === 'child') {
  const b = new SqliteBroker(await SqliteConnection.open(resolveSqliteOptions({ path: file })), { namespace: 'w', resultTtlMs: 60_000 });
  const c = await b.consumer({ queues: ['q'], consumerId: 'c' });
  process.send!('ready');
  for (;;) {
    const d = await c.fetch(1, new AbortController().signal);
    process.send!({ at: performance.timeOrigin + performance.now(), sent: d[0]!.envelope.args });
    await b.ack(d);
  }
} else {
  const b = new SqliteBroker(await SqliteConnection.open(resolveSqliteOptions({ path: file })), { namespace: 'w', resultTtlMs: 60_000 });
  const child = fork(new URL(import.meta.url).pathname, ['child', file], { execArgv: ['--import', 'tsx'] });
  await new Promise((r) => child.once('message', r));
  await new Promise((r) => setTimeout(r, 2000));
  const cpu0 = process.cpuUsage();
  const { readFileSync } = await import('node:fs');
  const ticks = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const t0 = ticks();
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const idle = (ticks() - t0) / 100 / ((Date.now() - w0) / 1000);
  console.log(`idle consumer CPU: ${(idle * 100).toFixed(2)}% of one core over 10 s`);
  const lat: number[] = [];
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 30 + Math.random() * 70));
    const sent = performance.timeOrigin + performance.now();
    const got = new Promise<{ at: number }>((r) => child.once('message', r as never));
    await b.publish([makeEnvelope('q', { args: { sent } })]);
    lat.push((await got).at - sent);
  }
  lat.sort((a, b) => a - b);
  console.log(
    `wake latency over 100 publishes (idle consumer, other process): p50 ${lat[50]!.toFixed(2)} ms, p99 ${lat[98]!.toFixed(2)} ms, max ${lat[99]!.toFixed(2)} ms`,
  );
  child.kill();
  void cpu0;
  process.exit(0);
}
