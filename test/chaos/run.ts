// `npm run test:chaos`: every fault against real worker processes, one summary line each.
// Options: --tasks N, --workers N, --concurrency N, --fault-every MS, --max-strikes N, --redis-port PORT,
// --appendfsync always|everysec|no (the AOF of redis-restart / redis-kill), --only kill-9,sigterm (faults),
// --backend redis|postgres, --isolate threads|processes (handlers in the isolation plugin's children).
// Exits 1 on any loss or unexplained duplicate.
import { parseArgs } from 'node:util';
import { ALL_SCENARIOS, formatSummary, runChaos, type AppendFsync, type ChaosOptions } from './chaos-harness.js';
import { redisServerInstalled } from './owned-redis-server.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string' },
    workers: { type: 'string' },
    concurrency: { type: 'string' },
    'fault-every': { type: 'string' },
    'max-strikes': { type: 'string' },
    'redis-port': { type: 'string' },
    only: { type: 'string' },
    backend: { type: 'string' },
    appendfsync: { type: 'string' },
    isolate: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

const number = (value: string | undefined, name: string): number | undefined => {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    process.stderr.write(`chaos: --${name} must be a whole number above 0, got ${JSON.stringify(value)}\n`);
    process.exit(64);
  }
  return parsed;
};

const options: Partial<ChaosOptions> = { log: values.quiet ? () => undefined : (line) => process.stderr.write(`  ${line}\n`) };
for (const [flag, key] of [
  ['tasks', 'tasks'],
  ['workers', 'workers'],
  ['concurrency', 'concurrency'],
  ['fault-every', 'faultEveryMs'],
  ['max-strikes', 'maxStrikes'],
  ['redis-port', 'redisPort'],
] as const) {
  const parsed = number(values[flag], flag);
  if (parsed !== undefined) (options as Record<string, unknown>)[key] = parsed;
}
if (values.appendfsync !== undefined) {
  if (!['always', 'everysec', 'no'].includes(values.appendfsync)) {
    process.stderr.write(`chaos: --appendfsync must be always, everysec or no, got ${JSON.stringify(values.appendfsync)}\n`);
    process.exit(64);
  }
  options.appendfsync = values.appendfsync as AppendFsync;
}
if (values.isolate !== undefined) {
  if (values.isolate !== 'threads' && values.isolate !== 'processes') {
    process.stderr.write(`chaos: --isolate must be threads or processes, got ${JSON.stringify(values.isolate)}\n`);
    process.exit(64);
  }
  // The worker processes inherit it (see chaos-worker.ts).
  process.env.CHAOS_ISOLATE = values.isolate;
}
const only = values.only?.split(',').map((fault) => fault.trim());
let scenarios = ALL_SCENARIOS.filter(
  (scenario) =>
    (only === undefined || only.includes(scenario.fault)) && (values.backend === undefined || scenario.backend === values.backend),
);
if (scenarios.length === 0) {
  process.stderr.write(
    `chaos: no scenario matches --only ${values.only ?? ''} --backend ${values.backend ?? ''}; faults: ${[...new Set(ALL_SCENARIOS.map((scenario) => scenario.fault))].join(', ')}\n`,
  );
  process.exit(64);
}
if (scenarios.some((scenario) => scenario.backend === 'redis') && !(await redisServerInstalled())) {
  process.stderr.write('chaos: redis-server is not on the PATH; the Redis scenarios need one (they start their own on a free port)\n');
  if (process.env.CI === 'true') process.exit(69);
  scenarios = scenarios.filter((scenario) => scenario.backend !== 'redis');
}

let failed = false;
for (const scenario of scenarios) {
  try {
    const summary = await runChaos(scenario, options);
    process.stdout.write(`${formatSummary(summary)}\n`);
    if (!summary.ok) failed = true;
  } catch (error) {
    failed = true;
    process.stdout.write(`chaos: ${scenario.fault} on ${scenario.backend} could not run: ${(error as Error).message}\n`);
  }
}
process.exit(failed ? 1 : 0);
