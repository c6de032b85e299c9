// `npm run test:roundtrips`: the "Done when" check of issue 16. Per composition of the matrix, a
// `stem worker start` idles in a child process and `stem enqueue greet --args '{"who":"bob-N"}' --wait`
// runs COUNT times in a loop, each against the worker idle and blocked waiting (as a user's second
// terminal does). Every call must print its result; a per-composition summary is printed and the
// exit code is 1 when any result was lost.
//
//   npm run test:roundtrips                                   # 200 per composition, every leg, both forms
//   npm run test:roundtrips -- --count 20 --legs redis,postgres --forms urls --parallel 2
//   npm run build && npm run test:roundtrips -- --forms urls --from dist
//
// `--from dist` runs the compiled CLI (as an installed package does) with a plain-JavaScript config of
// `greet` (fixtures/greet.config.mjs): each process then loads no TypeScript loader, about a quarter
// of the CPU of a source run. It needs the urls form (the plugins form's config is TypeScript).
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FORMS, LEGS, LEG_TITLES, openComposition, type Composition, type Form, type Leg } from '../helpers/compositions.js';
import { runStem, startStem } from '../helpers/run-stem.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '200' },
    legs: { type: 'string', default: LEGS.join(',') },
    forms: { type: 'string', default: FORMS.join(',') },
    parallel: { type: 'string', default: '2' },
    timeout: { type: 'string', default: '10s' },
    'max-lost': { type: 'string' },
    from: { type: 'string', default: 'source' },
  },
});

const count = Number(values.count);
const parallel = Number(values.parallel);
const maxLost = values['max-lost'] === undefined ? Infinity : Number(values['max-lost']);
const legs = values.legs.split(',').map((leg) => leg.trim()) as Leg[];
const forms = values.forms.split(',').map((form) => form.trim()) as Form[];
for (const leg of legs) if (!LEGS.includes(leg)) throw new Error(`--legs: unknown leg "${leg}"; use ${LEGS.join(', ')}`);
for (const form of forms) if (!FORMS.includes(form)) throw new Error(`--forms: unknown form "${form}"; use ${FORMS.join(', ')}`);
if (values.from !== 'source' && values.from !== 'dist') throw new Error(`--from: use source or dist, not "${values.from}"`);
if (values.from === 'dist' && forms.includes('plugins')) throw new Error('--from dist runs the urls form only: add --forms urls');
/** The CLI processes' environment on top of the composition's: the compiled CLI and the JavaScript config. */
const fromEnv: NodeJS.ProcessEnv =
  values.from === 'dist'
    ? { STEM_CLI_FROM: 'dist', STEM_CONFIG: fileURLToPath(new URL('./fixtures/greet.config.mjs', import.meta.url)) }
    : {};
if (!(count >= 1) || !(parallel >= 1) || !(maxLost >= 1))
  throw new Error('--count, --parallel and --max-lost take whole numbers of 1 or more');

/** What one composition's loop ended with. */
interface Summary {
  label: string;
  ok: number;
  lost: number;
  /** How each lost call ended: its first printed line, counted. */
  lostAs: Map<string, number>;
  seconds: number;
  error?: string;
}

/** Runs the loop on one composition: an idle CLI worker, then `count` × `stem enqueue … --wait`. */
async function roundTrips(composition: Composition): Promise<Summary> {
  const summary: Summary = { label: composition.label, ok: 0, lost: 0, lostAs: new Map(), seconds: 0 };
  const started = Date.now();
  const env = { ...composition.cliEnv, ...fromEnv };
  const worker = await startStem(['worker', 'start'], { env });
  try {
    // Generous: a worker process starting (tsx, config, migrations) on a loaded machine is slow.
    await worker.waitForOutput(/ready on/, 180_000);
    for (let i = 0; i < count && summary.lost < maxLost; i++) {
      await composition.waitForIdleConsumer();
      const who = `bob-${i}`;
      const run = await runStem(['enqueue', 'greet', '--args', JSON.stringify({ who }), '--wait', '--timeout', values.timeout], {
        env,
        timeoutMs: 120_000,
      });
      if (run.code === 0 && run.stdout.includes(`succeeded "hello ${who}"`)) {
        summary.ok++;
        continue;
      }
      summary.lost++;
      const printed = (run.stderr.trim() || run.stdout.trim() || 'nothing').split('\n')[0]!.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>');
      const why = `exit ${run.code}: ${printed}`;
      summary.lostAs.set(why, (summary.lostAs.get(why) ?? 0) + 1);
      console.log(`${composition.label}: round trip ${i + 1} lost: ${why}`);
    }
  } catch (error) {
    summary.error = (error as Error).message.split('\n')[0];
    console.log(`${composition.label}: stopped: ${(error as Error).message.slice(0, 2_000)}`);
  } finally {
    await worker.stop('SIGTERM');
    await composition.close();
    summary.seconds = (Date.now() - started) / 1000;
  }
  return summary;
}

const pending = legs.flatMap((leg) => forms.map((form) => openComposition(leg, form)));
const summaries: Summary[] = [];
console.log(`${count} CLI round trips per composition, ${pending.length} compositions, ${parallel} at a time`);
await Promise.all(
  Array.from({ length: Math.min(parallel, pending.length) }, async () => {
    for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
      const summary = await roundTrips(next);
      summaries.push(summary);
      console.log(
        `${summary.label}: ok ${summary.ok}, lost ${summary.lost} (${summary.seconds.toFixed(0)} s)${summary.error ? `, stopped: ${summary.error}` : ''}`,
      );
    }
  }),
);

console.log('\ncomposition                 ok  lost  how lost');
for (const leg of legs) {
  for (const form of forms) {
    const s = summaries.find((summary) => summary.label === `${leg}/${form}`)!;
    const how = [...s.lostAs].map(([why, n]) => `${n}× ${why}`).join('; ') || (s.error ? `stopped: ${s.error}` : '');
    console.log(`${s.label.padEnd(26)} ${String(s.ok).padStart(4)} ${String(s.lost).padStart(5)}  ${how}`);
  }
}
console.log(`\n(${legs.map((leg) => `${leg}: ${LEG_TITLES[leg]}`).join('; ')})`);
const failed = summaries.some((s) => s.lost > 0 || s.error !== undefined || s.ok < count);
process.exit(failed ? 1 : 0);
