import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Context } from 'hono';

/** The files of the page, by name, and their content types. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * What the page may load: its own script and style only, no inline script, no frames. A second
 * wall behind rendering task data as text: an injected handler or script would not run either.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's static files (plugins/dashboard/page), read once: plain HTML, CSS and an ES module, no build step. */
export class PageAssets {
  private readonly contents = new Map<string, string>();

  constructor(directory: URL = new URL('./page/', import.meta.url)) {
    for (const name of Object.keys(FILES)) this.contents.set(name, readFileSync(fileURLToPath(new URL(name, directory)), 'utf8'));
  }

  /** Responds with one file, or 404. */
  respond(c: Context, name: string): Response {
    const body = this.contents.get(name);
    if (body === undefined) return c.text('not found', 404);
    c.header('Content-Type', FILES[name]!);
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('Cache-Control', 'no-cache');
    return c.body(body);
  }
}
