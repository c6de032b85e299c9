import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { OTEL_MISSING_MESSAGE, otelRequested, startOtelExport } from '../../plugins/telemetry/index.js';
import { UsageError, type StemConfig, type StemPlugin } from '../../sdk/index.js';
import { runStem } from '../helpers/run-stem.js';

/** A project directory whose node_modules hold fake packages: name → CommonJS source. */
function projectWith(packages: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'stem-otel-'));
  writeFileSync(join(dir, 'package.json'), '{"name":"app","private":true}');
  for (const [name, source] of Object.entries(packages)) {
    const home = join(dir, 'node_modules', ...name.split('/'));
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'package.json'), JSON.stringify({ name, version: '0.0.0', main: 'index.js' }));
    writeFileSync(join(home, 'index.js'), source);
  }
  return dir;
}

/** What the fake SDKs record on globalThis, so the test can see they were started and stopped. */
const calls = (): string[] => ((globalThis as { otelCalls?: string[] }).otelCalls ??= []);

t.beforeEach(() => {
  calls().length = 0;
});

t.test('STEM_OTEL turns export on with 1, true, yes or on', async (t) => {
  for (const value of ['1', 'true', 'YES', 'on']) t.equal(otelRequested({ STEM_OTEL: value }), true, value);
  for (const value of [undefined, '', '0', 'false', 'off']) t.equal(otelRequested({ STEM_OTEL: value }), false, String(value));
});

t.test('without --otel or STEM_OTEL nothing is loaded and the config is unchanged', async (t) => {
  const config: StemConfig = { plugins: [] };
  t.equal(await startOtelExport(config, { env: {} }), undefined);
  t.same(config.plugins, []);
});

t.test("--otel starts the project's @opentelemetry/sdk-node and adds telemetry()", async (t) => {
  const dir = projectWith({
    '@opentelemetry/sdk-node': `
      class NodeSDK {
        constructor(options) { globalThis.otelCalls.push('constructed ' + JSON.stringify(options ?? {})); }
        start() { globalThis.otelCalls.push('start'); }
        async shutdown() { globalThis.otelCalls.push('shutdown'); }
      }
      module.exports = { NodeSDK };`,
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config: StemConfig = {};
  const otel = await startOtelExport(config, { flag: true, cwd: dir, env: {} });
  t.equal(otel?.via, '@opentelemetry/sdk-node');
  t.same(calls(), ['constructed {}', 'start'], 'constructed with no options: it configures itself from OTEL_* variables');
  t.same(
    config.plugins?.map((plugin) => plugin.name),
    ['telemetry'],
  );
  await otel!.shutdown();
  t.same(calls().at(-1), 'shutdown');
});

t.test('a telemetry() the config lists already is not added twice', async (t) => {
  const dir = projectWith({ '@opentelemetry/sdk-node': 'module.exports = { NodeSDK: class { start() {} async shutdown() {} } };' });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const own: StemPlugin = { name: 'telemetry', apply() {} };
  const config: StemConfig = { plugins: [own] };
  await startOtelExport(config, { env: { STEM_OTEL: '1' }, cwd: dir });
  t.same(config.plugins, [own]);
});

t.test('without sdk-node, sdk-trace-node with exporter-trace-otlp-http is used', async (t) => {
  const dir = projectWith({
    '@opentelemetry/sdk-trace-node': `
      class BatchSpanProcessor { constructor(exporter) { this.exporter = exporter; } }
      class NodeTracerProvider {
        constructor(options) { globalThis.otelCalls.push('provider with ' + options.spanProcessors[0].exporter.kind); }
        register() { globalThis.otelCalls.push('register'); }
        async shutdown() { globalThis.otelCalls.push('shutdown'); }
      }
      module.exports = { NodeTracerProvider, BatchSpanProcessor };`,
    '@opentelemetry/exporter-trace-otlp-http':
      'module.exports = { OTLPTraceExporter: class { constructor() { this.kind = "otlp-http"; } } };',
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const otel = await startOtelExport({}, { flag: true, cwd: dir, env: {} });
  t.equal(otel?.via, '@opentelemetry/sdk-trace-node + @opentelemetry/exporter-trace-otlp-http');
  t.same(calls(), ['provider with otlp-http', 'register']);
  await otel!.shutdown();
  t.same(calls().at(-1), 'shutdown');
});

t.test('--otel with no SDK installed is a usage error naming what to install', async (t) => {
  const dir = projectWith({});
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const error = await startOtelExport({}, { flag: true, cwd: dir, env: {} }).catch((caught: unknown) => caught);
  t.type(error, UsageError);
  t.equal((error as UsageError).exitCode, 64);
  t.equal((error as Error).message, OTEL_MISSING_MESSAGE);
});

t.test('stem worker start --otel exits 64 with one line when the SDK is not installed', async (t) => {
  const dir = projectWith({});
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = await runStem(['worker', 'start', '--otel'], { cwd: dir });
  t.equal(run.code, 64);
  t.equal(run.stderr, `stem: ${OTEL_MISSING_MESSAGE}\n`);
  const viaEnv = await runStem(['worker', 'start'], { cwd: dir, env: { STEM_OTEL: '1' } });
  t.equal(viaEnv.code, 64, 'STEM_OTEL=1 asks the same');
});
