// The TypeScript and JavaScript samples of README.md and docs/: what each one is and how the test
// checks it, read from the `<!-- sample: … -->` directive written above the block.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { directive, readMarkdownBlocks, type MarkdownBlock } from '../helpers/markdown-blocks.js';

/**
 * How a sample is checked:
 * - `run` (no directive): a complete program; type-checked, then run in memory, exit code 0.
 * - `fragment`: type-checked only, after the directive's body (a prelude declaring what the
 *   surrounding text assumes, e.g. `declare const stem: Stem;`).
 * - `needs <service>`: a complete program that needs a server (Redis, Postgres, an OpenTelemetry
 *   SDK); type-checked only, with the directive's body as prelude.
 * - `file <path>`: the block is (an excerpt of) a repository file that tests run; its tokens must
 *   appear, in order and contiguously, in that file (comments and layout aside), and the file is
 *   type-checked with the samples.
 */
export type SampleKind = 'run' | 'fragment' | 'needs' | 'file';

/** One code sample of a page and how it is checked. */
export interface DocSample {
  block: MarkdownBlock;
  kind: SampleKind;
  /** `needs` what, or the `file` path. */
  detail: string;
  /** Declarations placed before the code (type-check only). */
  prelude: string;
  /** `ts` or `js`. */
  language: 'ts' | 'js';
}

const LANGUAGES: Record<string, 'ts' | 'js'> = { ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js', mjs: 'js' };

/** The pages whose samples are checked: README.md, docs/*.md and docs/getting-started/*.md. */
export function samplePages(root: string): string[] {
  const pages = ['README.md'];
  for (const dir of ['docs', 'docs/getting-started']) {
    for (const name of readdirSync(join(root, dir)).sort()) if (name.endsWith('.md')) pages.push(`${dir}/${name}`);
  }
  return pages;
}

/** Every TypeScript/JavaScript sample of `pages` (paths relative to `root`). */
export function docSamples(root: string, pages: string[]): DocSample[] {
  const samples: DocSample[] = [];
  for (const page of pages) {
    for (const block of readMarkdownBlocks(join(root, page), page)) {
      const language = LANGUAGES[block.lang];
      if (!language) continue;
      const found = directive(block, 'sample');
      const [word = 'run', ...rest] = (found?.value ?? 'run').split(/\s+/);
      if (!['run', 'fragment', 'needs', 'file'].includes(word)) {
        throw new Error(
          `${page}:${block.line}: unknown sample directive "${found?.value}" (use fragment, needs <service>, file <path>, or none)`,
        );
      }
      samples.push({ block, kind: word as SampleKind, detail: rest.join(' '), prelude: found?.body ?? '', language });
    }
  }
  return samples;
}
