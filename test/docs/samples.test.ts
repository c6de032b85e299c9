// Every TypeScript and JavaScript sample of README.md and docs/ as printed: extracted from the
// Markdown, type-checked in one tsc run (strict, NodeNext, the repository's tsconfig), and the
// complete ones run in memory. The directive above a block says what it is (test/docs/doc-samples.ts).
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { repoRoot } from '../helpers/run-stem.js';
import { docSamples, samplePages, type DocSample } from './doc-samples.js';

const samples = docSamples(repoRoot, samplePages(repoRoot));
// Inside the repository, so that `import … from 'stem'` resolves to this package (its
// self-reference, or the tsconfig paths), and under a .gitignored `.tmp-` name.
const dir = join(repoRoot, `.tmp-doc-samples-${process.pid}-${Date.now().toString(36)}`);

/** The file name a sample is written to, e.g. `docs-operations-md-63.ts`. */
function fileOf(sample: DocSample): string {
  const stem = sample.block.file.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase();
  return `${stem}-${sample.block.line}.${sample.language === 'ts' ? 'ts' : 'mjs'}`;
}

/** Where a sample is written from in its page: `docs/operations.md:63`. */
function where(sample: DocSample): string {
  return `${sample.block.file}:${sample.block.line}`;
}

/** The tokens of TypeScript source, without comments and layout (trailing commas included). */
function tokens(source: string): string[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, source);
  const out: string[] = [];
  // The scanner reads `}` inside a template literal as a brace unless told to rescan it.
  const braces: Array<'brace' | 'template'> = [];
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    if (kind === ts.SyntaxKind.CloseBraceToken && braces.pop() === 'template') {
      kind = scanner.reScanTemplateToken(false);
      if (kind === ts.SyntaxKind.TemplateMiddle) braces.push('template');
    } else if (kind === ts.SyntaxKind.OpenBraceToken) braces.push('brace');
    else if (kind === ts.SyntaxKind.TemplateHead) braces.push('template');
    out.push(scanner.getTokenText());
  }
  // A trailing comma is layout too: the formatter adds one where it breaks a list over lines.
  return out.filter((token, index) => token !== ',' || ![')', ']', '}'].includes(out[index + 1] ?? ''));
}

function run(args: string[], cwd: string, timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1' }, timeout: timeoutMs }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }),
    );
  });
}

t.test('the samples of README.md and docs/ are found and each is classified', async (t) => {
  t.ok(samples.length >= 30, `found ${samples.length} samples`);
  for (const page of ['README.md', 'docs/operations.md', 'docs/canvas.md', 'docs/getting-started/developer-environment.md']) {
    t.ok(
      samples.some((s) => s.block.file === page),
      `${page} has samples`,
    );
  }
});

t.test('samples that show a repository file match that file, comments and layout aside', async (t) => {
  for (const sample of samples.filter((s) => s.kind === 'file')) {
    const file = readFileSync(join(repoRoot, sample.detail), 'utf8');
    const wanted = tokens(sample.block.code).join('\u0000');
    t.ok(tokens(file).join('\u0000').includes(wanted), `${where(sample)} shows what ${sample.detail} contains`);
  }
});

t.test('every sample type-checks and every complete one runs', async (t) => {
  t.setTimeout(600_000);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // What samples import relatively, as a reader's project would have it: its tasks, the example broker.
  writeFileSync(join(dir, 'tasks.ts'), "export * from '../fixtures/tasks.js';\nexport { default } from '../fixtures/tasks.js';\n");
  writeFileSync(join(dir, 'array-broker.ts'), "export * from '../fixtures/plugins/array-broker.js';\n");
  copyFileSync(join(repoRoot, 'fixtures/routing.yaml'), join(dir, 'routing.yaml'));
  // The OpenTelemetry Node SDK is the user's to install; its shape, for the telemetry page's setup file.
  writeFileSync(
    join(dir, 'ambient.d.ts'),
    "declare module '@opentelemetry/sdk-node' {\n  export class NodeSDK {\n    constructor(config?: object);\n    start(): void;\n    shutdown(): Promise<void>;\n  }\n}\n",
  );

  const preludeLines = new Map<string, { sample: DocSample; lines: number }>();
  for (const sample of samples) {
    if (sample.kind === 'file') continue;
    const prelude = sample.prelude.trim() === '' ? '' : `${sample.prelude.trimEnd()}\n`;
    // `export {}` makes a fragment without imports a module, where top-level await is allowed.
    writeFileSync(join(dir, fileOf(sample)), `${prelude}${sample.block.code}export {};\n`);
    if (sample.language === 'ts') preludeLines.set(fileOf(sample), { sample, lines: prelude === '' ? 0 : prelude.split('\n').length - 1 });
  }
  const fixtures = [...new Set(samples.filter((s) => s.kind === 'file').map((s) => s.detail))];
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: { noEmit: true, rootDir: '..', declaration: false, sourceMap: false },
      include: ['*.ts', ...fixtures.map((f) => `../${f}`)],
    }),
  );

  const checked = await run([join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], repoRoot, 180_000);
  // Errors point at the page: `docs/operations.md:65: error TS2304: Cannot find name 'ControlClient'`.
  const errors = new Map<string, string[]>();
  const unplaced: string[] = [];
  for (const line of checked.output.split('\n').filter((l) => l.trim() !== '')) {
    const match = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    const file = match ? relative(dir, join(repoRoot, match[1]!)) : '';
    const placed = preludeLines.get(file);
    if (!match || !placed) {
      unplaced.push(line);
      continue;
    }
    const inPrelude = Number(match[2]) <= placed.lines;
    const mdLine = placed.sample.block.line + Number(match[2]) - placed.lines;
    const message = inPrelude
      ? `${where(placed.sample)} (in the sample directive's prelude): ${match[4]}`
      : `${placed.sample.block.file}:${mdLine}: ${match[4]}`;
    errors.set(file, [...(errors.get(file) ?? []), message]);
  }
  for (const [file, { sample }] of preludeLines) {
    t.same(errors.get(file) ?? [], [], `${where(sample)} type-checks (${sample.kind})`);
  }
  t.same(unplaced, [], 'tsc reports nothing else (fixtures shown by the pages included)');
  t.equal(checked.code, 0, 'tsc accepts every sample');

  // One process runs them all, one after the other (a process per sample would cost a start-up
  // each): a sample that throws is reported; one that leaves a handle open keeps the runner alive
  // and fails on the time limit.
  const runnable = samples.filter((s) => s.kind === 'run');
  writeFileSync(
    join(dir, 'run-samples.mjs'),
    'for (const file of process.argv.slice(2)) {\n  try {\n    await import(`./${file}`);\n    console.log(`\\nsample-ok ${file}`);\n  } catch (error) {\n    console.log(`\\nsample-failed ${file}: ${error?.stack ?? error}`);\n  }\n}\n',
  );
  const ran = await run(['--conditions=stem-source', '--import', 'tsx', 'run-samples.mjs', ...runnable.map(fileOf)], dir, 120_000);
  t.equal(ran.code, 0, 'the runner exits by itself once every sample has run');
  for (const sample of runnable) {
    const ok = ran.output.includes(`\nsample-ok ${fileOf(sample)}\n`);
    t.ok(ok, `${where(sample)} runs to its end in memory${ok ? '' : `:\n${ran.output}`}`);
  }
});
