/**
 * What the Redis worker costs per task (#28): workload 3 (a pre-filled queue of no-op tasks drained
 * by one worker of concurrency 100) on a redis-server of its own (free port, no persistence), so
 * that its CPU and its command counts are ours alone. Per drain: tasks/s, this process's CPU µs per
 * task (user + system, the worker only: the queue is filled before), the server's CPU µs per task,
 * and `INFO commandstats` per task (calls and µs of each command and script). Subjects are source
 * checkouts (`--dirs`, directories holding the repository's sdk/ and plugins/, e.g. `git archive
 * <commit> | tar -x -C DIR` with node_modules linked) and, with `--floor`, the raw ioredis loop of
 * bench/systems/floor-system.ts; they alternate within each run and medians are printed. CPU per
 * task is what to read on a loaded machine: throughput moves with everyone else's load.
 * `--profile DIR` writes a V8 CPU profile of each subject's last drain (worker only) to DIR (wall
 * clock: on a busy machine a socket write that wakes Redis also collects the time the worker waits
 * for a core), `--heap DIR` a sampling heap profile of it (every allocation, also what the
 * scavenger freed), `--scripts` adds the server's µs per task of each Lua script (SLOWLOG of every
 * command during the drain, by SHA1), `--prefetch` the worker's prefetchMultiplier (default 1).
 *
 *   npx tsx bench/worker-cost.ts --dirs DIR[,DIR…] [--floor] [--n 20000] [--runs 5] [--scripts] [--profile DIR] [--heap DIR]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { OwnedRedisServer } from '../test/chaos/owned-redis-server.js';
import { startRecorder, type BenchPayload, type Servers } from './systems/bench-system.js';
import { FloorProducer, FloorWorker } from './systems/floor-system.js';

const { values } = parseArgs({
  options: {
    dirs: { type: 'string', default: '.' },
    floor: { type: 'boolean', default: false },
    n: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '100' },
    prefetch: { type: 'string', default: '1' },
    profile: { type: 'string' },
    scripts: { type: 'boolean', default: false },
    heap: { type: 'string' },
  },
});
const n = Number(values.n);
const runs = Number(values.runs);
const concurrency = Number(values.concurrency);

/** One subject, ready to fill its queue and drain it. */
interface Subject {
  name: string;
  /** Script names by SHA1, for --scripts. */
  scriptNames: Map<string, string>;
  fill(count: number): Promise<void>;
  drain(count: number): Promise<void>;
  close(): Promise<void>;
}

interface Sample {
  rate: number;
  clientCpu: number;
  /** The kernel's share of clientCpu (system time: mostly socket writes and reads). */
  clientSys: number;
  serverCpu: number;
  /** Bytes the server read and wrote per task. */
  netIn: number;
  netOut: number;
  commands: Map<string, { calls: number; usec: number }>;
  /** With --scripts: server µs per task of each Lua script (SLOWLOG of every command, by SHA1). */
  scripts: Map<string, number>;
}

async function stemSubject(dir: string, url: string): Promise<Subject> {
  const sdk = (await import(resolve(dir, 'sdk/index.ts'))) as typeof import('../sdk/index.js');
  const { redis } = (await import(resolve(dir, 'plugins/redis/index.ts'))) as typeof import('../plugins/redis/index.js');
  const noop = sdk.defineTask({ name: 'bench.noop', handler: async (payload: BenchPayload) => startRecorder.started(payload) });
  const namespace = `cost-${randomBytes(3).toString('hex')}`;
  const open = () => sdk.Stem.create({ plugins: [redis({ url, namespace })], tasks: [noop], defaultQueue: 'bench' });
  const producer = await open();
  const workerStem = await open();
  let onAcked: ((count: number) => void) | undefined;
  const broker = workerStem.broker;
  const ack = broker.ack.bind(broker);
  broker.ack = async (deliveries) => {
    await ack(deliveries);
    onAcked?.(deliveries.length);
  };
  const ackWithStates = broker.ackWithStates?.bind(broker);
  if (ackWithStates) {
    broker.ackWithStates = async (backend, statuses, ttlMs, deliveries) => {
      const settled = await ackWithStates(backend, statuses, ttlMs, deliveries);
      if (settled) onAcked?.(deliveries.length);
      return settled;
    };
  }
  const scriptNames = new Map<string, string>();
  const luaDir = resolve(dir, 'plugins/redis/lua');
  for (const file of readdirSync(luaDir)) {
    const sha = createHash('sha1')
      .update(readFileSync(resolve(luaDir, file), 'utf8'))
      .digest('hex');
    scriptNames.set(sha, file.replace(/\.lua$/, ''));
  }
  return {
    name: basename(resolve(dir)),
    scriptNames,
    async fill(count) {
      for (let sent = 0; sent < count; sent += 1000) {
        const batch = Array.from({ length: Math.min(1000, count - sent) }, (_, i) => ({ task: noop, args: { i: sent + i, t0: 0 } }));
        await producer.enqueueMany(batch);
      }
    },
    async drain(count) {
      let acked = 0;
      const done = new Promise<void>((resolveDone) => {
        onAcked = (settled) => {
          acked += settled;
          if (acked >= count) resolveDone();
        };
      });
      const worker = workerStem.worker({ queues: ['bench'], concurrency, prefetchMultiplier: Number(values.prefetch) });
      await worker.start();
      await done;
      onAcked = undefined;
      await worker.stop();
    },
    async close() {
      await producer.close();
      await workerStem.close();
    },
  };
}

async function floorSubject(url: string): Promise<Subject> {
  const servers: Servers = { redisUrl: url, postgresUrl: '' };
  const producer = await FloorProducer.open(servers);
  const worker = await FloorWorker.open(servers);
  return {
    name: 'floor',
    scriptNames: new Map(),
    async fill(count) {
      for (let sent = 0; sent < count; sent += 1000) {
        await producer.enqueueBulk(Array.from({ length: Math.min(1000, count - sent) }, (_, i) => ({ i: sent + i, t0: 0 })));
      }
    },
    async drain(count) {
      await worker.drain(count);
    },
    async close() {
      await producer.close();
      await worker.close();
    },
  };
}

async function serverCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function netBytes(client: Redis): Promise<[number, number]> {
  const info = await client.info('stats');
  const field = (name: string): number => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0);
  return [field('total_net_input_bytes'), field('total_net_output_bytes')];
}

async function commandStats(client: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const line of (await client.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match) stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

async function measure(target: Subject, monitor: Redis, profileTo: string | undefined, heapTo?: string): Promise<Sample> {
  await monitor.flushall();
  await target.fill(n);
  await monitor.config('RESETSTAT');
  if (values.scripts) {
    await monitor.config('SET', 'slowlog-log-slower-than', '0');
    await monitor.config('SET', 'slowlog-max-len', '1000000');
    await monitor.slowlog('RESET');
  }
  const serverBefore = await serverCpuSeconds(monitor);
  const netBefore = await netBytes(monitor);
  let session: Session | undefined;
  if (profileTo !== undefined) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  let heapSession: Session | undefined;
  if (heapTo !== undefined) {
    heapSession = new Session();
    heapSession.connect();
    await heapSession.post('HeapProfiler.enable');
    // every allocation sampled, including what the scavenger collects: what the task costs the GC
    await heapSession.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  }
  const cpu = process.cpuUsage();
  const started = performance.now();
  await target.drain(n);
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  if (heapSession !== undefined) {
    const { profile } = await heapSession.post('HeapProfiler.stopSampling');
    writeFileSync(heapTo!, JSON.stringify(profile));
    heapSession.disconnect();
  }
  if (session !== undefined) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profileTo!, JSON.stringify(profile));
    session.disconnect();
  }
  const serverCpu = (((await serverCpuSeconds(monitor)) - serverBefore) * 1e6) / n;
  const netAfter = await netBytes(monitor);
  const scripts = new Map<string, number>();
  if (values.scripts) {
    await monitor.config('SET', 'slowlog-log-slower-than', '-1');
    const entries = (await monitor.slowlog('GET', -1)) as Array<[number, number, number, string[]]>;
    for (const [, , usec, args] of entries) {
      const name =
        args[0]?.toLowerCase() === 'evalsha' ? (target.scriptNames.get(args[1]!) ?? 'evalsha ?') : (args[0] ?? '?').toLowerCase();
      scripts.set(name, (scripts.get(name) ?? 0) + usec / n);
    }
    await monitor.slowlog('RESET');
  }
  const commands = await commandStats(monitor);
  // what the two INFO calls above added
  commands.delete('info');
  return {
    rate: (n / elapsed) * 1000,
    clientCpu: (used.user + used.system) / n,
    clientSys: used.system / n,
    serverCpu,
    netIn: (netAfter[0] - netBefore[0]) / n,
    netOut: (netAfter[1] - netBefore[1]) / n,
    commands,
    scripts,
  };
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const server = await OwnedRedisServer.start();
const monitor = new Redis(server.url);
const subjects: Subject[] = [];
try {
  for (const dir of values.dirs.split(',')) subjects.push(await stemSubject(dir, server.url));
  if (values.floor) subjects.push(await floorSubject(server.url));
  if (values.profile !== undefined) mkdirSync(values.profile, { recursive: true });
  if (values.heap !== undefined) mkdirSync(values.heap, { recursive: true });
  const samples = new Map<Subject, Sample[]>(subjects.map((subject) => [subject, []]));
  // A warm-up of each, then the subjects alternate (the order turns each run).
  for (const subject of subjects) await measure(subject, monitor, undefined);
  for (let run = 0; run < runs; run++) {
    const order = subjects.map((_, i) => subjects[(i + run) % subjects.length]!);
    for (const subject of order) {
      const profileTo =
        values.profile !== undefined && run === runs - 1 ? resolve(values.profile, `${subject.name}.cpuprofile`) : undefined;
      const heapTo = values.heap !== undefined && run === runs - 1 ? resolve(values.heap, `${subject.name}.heapprofile`) : undefined;
      const sample = await measure(subject, monitor, profileTo, heapTo);
      samples.get(subject)!.push(sample);
      console.error(
        `run ${run + 1}/${runs} ${subject.name}: ${Math.round(sample.rate)} tasks/s, ` +
          `client ${sample.clientCpu.toFixed(1)} us/task (sys ${sample.clientSys.toFixed(1)}), ` +
          `server ${sample.serverCpu.toFixed(1)} us/task, ${Math.round(sample.netIn)} B in / ${Math.round(sample.netOut)} B out per task` +
          (values.scripts
            ? `; by command (us/task): ${[...sample.scripts].map(([name, us]) => `${name} ${us.toFixed(2)}`).join(', ')}`
            : ''),
      );
    }
  }
  console.log(
    `n=${n}, concurrency ${concurrency}, runs=${runs}, medians; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}`,
  );
  console.log('| subject | tasks/s | client CPU us/task | server CPU us/task | commands per task (calls, server us) |');
  console.log('|---|---|---|---|---|');
  for (const subject of subjects) {
    const taken = samples.get(subject)!;
    const names = new Set(taken.flatMap((sample) => [...sample.commands.keys()]));
    const perTask: string[] = [];
    for (const name of [...names].sort()) {
      const calls = median(taken.map((sample) => sample.commands.get(name)?.calls ?? 0)) / n;
      const usec = median(taken.map((sample) => sample.commands.get(name)?.usec ?? 0)) / n;
      if (calls >= 0.005) perTask.push(`${name} ${calls.toFixed(2)} (${usec.toFixed(1)})`);
    }
    console.log(
      `| ${subject.name} | ${Math.round(median(taken.map((s) => s.rate)))} | ${median(taken.map((s) => s.clientCpu)).toFixed(1)} | ` +
        `${median(taken.map((s) => s.serverCpu)).toFixed(1)} | ${perTask.join(', ')} |`,
    );
  }
} finally {
  for (const subject of subjects) await subject.close();
  monitor.disconnect();
  await server.stop();
}
