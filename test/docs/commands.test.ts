// The shell commands of README.md and docs/ (the walkthrough page aside: its own test runs every
// command of it): each `stem …`/`npx stem …` line must parse with the real CLI (command path,
// options, arity; nothing is executed, so no server is needed), each `npm run X` and `npm test`
// must name a script of package.json, each `npx tap FILE` an existing file. Other lines (npm
// install, docker, export, openssl) are the reader's environment and are only listed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildCli } from '../../cli/main.js';
import { readMarkdownBlocks } from '../helpers/markdown-blocks.js';
import { repoRoot } from '../helpers/run-stem.js';
import { WALKTHROUGH_PAGE, commandsOf } from '../walkthrough/walkthrough-runner.js';
import { samplePages } from './doc-samples.js';

/** Shell words of one command line: quotes removed, `<placeholder words>` kept as one word, `# comment` dropped. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && line[i + 1] === '\n') {
      i++;
      continue;
    }
    if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    if (ch === '#' && word === undefined) break;
    if (ch === "'" || ch === '"') {
      const end = line.indexOf(ch, i + 1);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
      continue;
    }
    if (ch === '<' && word === undefined) {
      const end = line.indexOf('>', i);
      word = line.slice(i, end + 1);
      i = end;
      continue;
    }
    word = (word ?? '') + ch;
  }
  if (word !== undefined) words.push(word);
  return words;
}

const scripts = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const pages = samplePages(repoRoot).filter((page) => page !== WALKTHROUGH_PAGE);

t.test('every stem command line of README.md and docs/ parses with the CLI; npm scripts and files exist', async (t) => {
  const notChecked: string[] = [];
  let parsed = 0;
  for (const page of pages) {
    for (const block of readMarkdownBlocks(join(repoRoot, page), page).filter((b) => b.lang === 'bash' || b.lang === 'sh')) {
      for (const line of commandsOf(block.code)) {
        for (const part of line.split(/\s&&\s/)) {
          const where = `${page}:${block.line}: ${part.split('\n')[0]}`;
          const words = shellWords(part);
          while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) words.shift(); // VAR=value prefixes
          if (words.length === 0) continue;
          const [first, second, third] = words;
          if (first === 'stem' || (first === 'npx' && second === 'stem')) {
            const args = words.slice(first === 'stem' ? 1 : 2);
            // `--config FILE` applies to every command and picks the commands a project adds.
            const at = args.indexOf('--config');
            const configFile = at >= 0 ? args.splice(at, 2)[1] : undefined;
            if (configFile !== undefined) process.env.STEM_CONFIG = configFile;
            try {
              const cli = await buildCli();
              let error: unknown;
              try {
                cli.process(args);
              } catch (caught) {
                error = caught;
              }
              t.equal(
                error,
                undefined,
                `${where} parses`,
                error ? { message: (error as Error).message.split('\n').slice(0, 3).join('\n') } : {},
              );
              parsed++;
            } finally {
              delete process.env.STEM_CONFIG;
            }
          } else if (first === 'npm' && (second === 'run' || second === 'test')) {
            const script = second === 'test' ? 'test' : third!;
            t.ok(scripts[script], `${where}: package.json has the script "${script}"`);
          } else if (first === 'npx' && second === 'tap') {
            for (const file of words.slice(2).filter((w) => !w.startsWith('-')))
              t.ok(existsSync(join(repoRoot, file)), `${where}: ${file} exists`);
          } else {
            notChecked.push(where);
          }
        }
      }
    }
  }
  t.ok(parsed >= 30, `${parsed} stem command lines parsed`);
  t.comment(`not checked (the reader's environment):\n  ${notChecked.join('\n  ')}`);
});

t.test('a mistyped command or option in a page would fail this test', async (t) => {
  const cli = await buildCli();
  t.throws(() => cli.process(['worker', 'pauze', '--queue', 'reports']), 'an unknown command path');
  t.throws(() => cli.process(['schedule', 'list', '--stor', 'redis://localhost:6379/2']), 'an unknown option');
  t.same(shellWords(`npx stem worker stats -w <worker id>      # counters`), ['npx', 'stem', 'worker', 'stats', '-w', '<worker id>']);
  t.same(shellWords(`stem routing test reports.weekly --headers '{"tenant":"acme"}'`), [
    'stem',
    'routing',
    'test',
    'reports.weekly',
    '--headers',
    '{"tenant":"acme"}',
  ]);
});
