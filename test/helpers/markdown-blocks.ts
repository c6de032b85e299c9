// Reads the fenced code blocks of a Markdown page, with the HTML-comment directives written right
// above each one (`<!-- sample: fragment -->`, `<!-- walkthrough: skip -->`), so that tests run
// what a page prints and a page edit changes what the tests run.
import { readFileSync } from 'node:fs';

/** An HTML comment `<!-- key: value\nbody -->` placed right above a code block. */
export interface BlockDirective {
  /** The word before the colon: `sample`, `walkthrough`. */
  key: string;
  /** The rest of the comment's first line, trimmed. */
  value: string;
  /** The comment's further lines (a sample's prelude), without the closing `-->`. */
  body: string;
}

/** One fenced code block of a page. */
export interface MarkdownBlock {
  /** The page it comes from, as given to `readMarkdownBlocks`. */
  file: string;
  /** The first word of the fence's info string (`ts`, `bash`, `text`), or '' for a bare fence. */
  lang: string;
  /** The block's text, without the fences, ending with a newline. */
  code: string;
  /** The 1-based line of the opening fence. */
  line: number;
  /** The directives directly above the block (only blank lines or other directives in between). */
  directives: BlockDirective[];
}

const FENCE = /^(\s{0,3})(`{3,}|~{3,})\s*([^\s`]*)/;
const DIRECTIVE = /^<!--\s*([\w-]+):([^\n]*?)(?:\n([\s\S]*?))?\s*-->$/;

/** Splits `markdown` into its fenced code blocks, each with the directives written above it. */
export function markdownBlocks(markdown: string, file = '<markdown>'): MarkdownBlock[] {
  const lines = markdown.split('\n');
  const blocks: MarkdownBlock[] = [];
  let pending: BlockDirective[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (line.trimStart().startsWith('<!--')) {
      // A comment may span lines (a prelude); it ends at the first line containing -->.
      let end = i;
      while (end < lines.length && !lines[end]!.includes('-->')) end++;
      const text = lines
        .slice(i, end + 1)
        .join('\n')
        .trim();
      const match = DIRECTIVE.exec(text);
      if (match) pending.push({ key: match[1]!, value: match[2]!.trim(), body: match[3] ?? '' });
      i = end;
      continue;
    }
    const fence = FENCE.exec(line);
    if (!fence) {
      pending = [];
      continue;
    }
    const [, indent, marker, lang] = fence;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const closing = lines[j]!.trim();
      if (closing.startsWith(marker!) && closing.replace(/[`~]/g, '') === '') break;
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: a code block opened here is never closed`);
    blocks.push({ file, lang: lang ?? '', code: body.length === 0 ? '' : `${body.join('\n')}\n`, line: i + 1, directives: pending });
    pending = [];
    i = j;
  }
  return blocks;
}

/** Reads a Markdown file and returns its fenced code blocks (see `markdownBlocks`). */
export function readMarkdownBlocks(path: string, label = path): MarkdownBlock[] {
  return markdownBlocks(readFileSync(path, 'utf8'), label);
}

/** The directive of `key` above `block`, if any. */
export function directive(block: MarkdownBlock, key: string): BlockDirective | undefined {
  return block.directives.find((d) => d.key === key);
}
