/**
 * Measures what telemetry() costs on an in-memory workload: off, on with no SDK registered, and
 * on with the tracing and metrics SDKs recording (spans dropped by a no-op processor). Not a
 * test (speed lives in the bench): `node --import tsx test/telemetry/measure-overhead.ts [tasks] [rounds]`.
 */
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { telemetry } from '../../plugins/telemetry/index.js';
import { Stem, defineTask, type StemPlugin } from '../../sdk/index.js';
import { registerGlobalContext } from './otel-harness.js';

const noop = defineTask({ name: 'overhead.noop', handler: async (args: { n: number }) => args.n });

/** Tasks per second through enqueueMany and a memory worker, with `plugins`. */
export async function tasksPerSecond(plugins: StemPlugin[], tasks: number): Promise<number> {
  const stem = await Stem.create({ tasks: [noop], plugins, trackQueued: false });
  const worker = stem.worker({ concurrency: 64 });
  await worker.start();
  const started = performance.now();
  const batch = 500;
  const handles = [];
  for (let i = 0; i < tasks; i += batch) {
    handles.push(...(await stem.enqueueMany(Array.from({ length: Math.min(batch, tasks - i) }, (_, n) => ({ task: noop, args: { n } })))));
  }
  await Promise.all(handles.map((handle) => handle.result({ timeoutMs: 60_000 })));
  const seconds = (performance.now() - started) / 1000;
  await stem.close();
  return tasks / seconds;
}

/** The median of `rounds` runs of two variants, interleaved so machine noise hits both alike. */
async function compare(tasks: number, rounds: number, a: () => StemPlugin[], b: () => StemPlugin[]): Promise<[number, number]> {
  const runsA: number[] = [];
  const runsB: number[] = [];
  for (let i = 0; i < rounds; i++) {
    runsA.push(await tasksPerSecond(a(), tasks));
    runsB.push(await tasksPerSecond(b(), tasks));
  }
  const median = (runs: number[]): number => runs.sort((x, y) => x - y)[Math.floor(runs.length / 2)]!;
  return [median(runsA), median(runsB)];
}

/**
 * Tasks per second without and with telemetry(): first with no SDK registered (the plugin taps
 * nothing), then with the tracing and metrics SDKs recording, against a baseline that pays for
 * the AsyncLocalStorage context manager too (a process with an SDK has it whether Stem traces or not).
 */
export async function measureTelemetryOverhead(
  tasks = 20_000,
  rounds = 7,
): Promise<{ noSdk: [off: number, on: number]; withSdk: [off: number, on: number] }> {
  await tasksPerSecond([], tasks); // warm-up
  const noSdk = await compare(
    tasks,
    rounds,
    () => [],
    () => [telemetry()],
  );
  registerGlobalContext();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] });
  const meterProvider = new MeterProvider();
  const withSdk = await compare(
    tasks,
    rounds,
    () => [],
    () => [telemetry({ tracerProvider, meterProvider })],
  );
  return { noSdk, withSdk };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [tasks, rounds] = process.argv.slice(2).map(Number);
  if (
    trace.getTracerProvider().getTracer('probe').startSpan('probe').isRecording() ||
    metrics.getMeterProvider().getMeter('probe') !== metrics.getMeter('other')
  ) {
    process.stderr.write('measure-overhead: run it in a process with no OpenTelemetry SDK registered\n');
  }
  const { noSdk, withSdk } = await measureTelemetryOverhead(tasks || undefined, rounds || undefined);
  const line = ([off, on]: [number, number]): string =>
    `off ${off.toFixed(0)} tasks/s, on ${on.toFixed(0)} tasks/s (${(((on - off) / off) * 100).toFixed(1)}%)`;
  process.stdout.write(`no SDK registered: ${line(noSdk)}\nSDK recording:     ${line(withSdk)}\n`);
}
