// The Markdown reading and output matching the doc tests rest on.
import t from 'tap';
import { directive, markdownBlocks } from '../helpers/markdown-blocks.js';
import { commandsOf, mapPostgresUrl, mapRedisUrl, matchOutput } from '../walkthrough/walkthrough-runner.js';

t.test('code blocks come with their language, line and the directives written right above them', async (t) => {
  const page = [
    '# Title',
    '',
    '<!-- sample: fragment',
    "import type { Stem } from 'stem';",
    'declare const stem: Stem;',
    '-->',
    '```ts',
    'stem.signals.on("worker-ready", () => undefined);',
    '```',
    '',
    'Prose between a directive and a block detaches it:',
    '<!-- walkthrough: skip: not this one -->',
    'a paragraph',
    '```bash',
    'npx stem routing dump',
    '```',
  ].join('\n');
  const [ts, bash] = markdownBlocks(page, 'page.md');
  t.match(ts, { lang: 'ts', line: 7, code: 'stem.signals.on("worker-ready", () => undefined);\n' });
  t.same(directive(ts!, 'sample'), {
    key: 'sample',
    value: 'fragment',
    body: "import type { Stem } from 'stem';\ndeclare const stem: Stem;",
  });
  t.match(bash, { lang: 'bash', line: 14, directives: [] });
  t.throws(() => markdownBlocks('```ts\nconst a = 1;\n', 'open.md'), /open\.md:1: a code block opened here is never closed/);
});

t.test('shown output matches line by line, in order, with placeholders; a command placeholder keeps its value', async (t) => {
  const bindings = new Map<string, string>();
  const variables = new Set(['chord id']);
  const printed = 'noise\nGroup dispatched: a1, a2\nChord callback task id: 0190-abc\n';
  t.same(matchOutput('Group dispatched: <task id>, <task id>\nChord callback task id: <chord id>', printed, variables, bindings), {
    ok: true,
  });
  t.equal(bindings.get('chord id'), '0190-abc');
  t.same(matchOutput('id       <chord id>', 'id 0190-abc', variables, bindings), { ok: true }, 'runs of spaces match any run');
  t.same(
    matchOutput('id       <chord id>', 'id 0190-xyz', variables, bindings),
    { ok: false, missing: 'id       <chord id>' },
    'another id is not the chord',
  );
  t.same(matchOutput('b\na', 'a\nb', variables, bindings), { ok: false, missing: 'a' }, 'order counts');
});

t.test('only the db index, the database and the page host stand in for the test servers', async (t) => {
  t.equal(mapRedisUrl('redis://localhost:6379', [6, 7, 8], 'redis://127.0.0.1:6379/15'), 'redis://localhost:6379/6');
  t.equal(mapRedisUrl('redis://localhost:6379/2', [6, 7, 8], 'redis://127.0.0.1:6379/15'), 'redis://localhost:6379/8');
  t.equal(mapRedisUrl('redis://localhost:6379/1', [6, 7, 8], 'redis://ci-redis:6380/15'), 'redis://ci-redis:6380/7');
  t.equal(
    mapPostgresUrl('postgres://postgres:postgres@localhost:5432/postgres', 'walk', 'postgres://postgres@127.0.0.1:5432/test'),
    'postgres://postgres:postgres@localhost:5432/walk',
  );
  t.same(commandsOf('npx stem a \\\n  --b c\n\n# a comment\nnpx stem d\n'), ['npx stem a \\\n  --b c', 'npx stem d']);
});
