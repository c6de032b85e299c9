import { createInterface } from 'node:readline/promises';
import type { BaseContext } from 'clipanion';
import { UsageError } from '../../sdk/errors.js';

/**
 * Asks before a destructive action: true with `--yes`; on a TTY, asks the question; otherwise
 * refuses with a usage error that says to pass --yes.
 */
export async function confirmDestructive(context: BaseContext, yes: boolean, question: string): Promise<boolean> {
  if (yes) return true;
  const stdin = context.stdin as NodeJS.ReadStream;
  if (!stdin.isTTY) throw new UsageError(`${question.replace(/\?$/, '')}: refusing without confirmation; pass --yes`);
  const prompt = createInterface({ input: stdin, output: context.stderr as NodeJS.WritableStream });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}
