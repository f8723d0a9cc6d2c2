/**
 * Type-checks every TypeScript block of the docs, so a snippet a reader
 * copies compiles against the packages as they are.
 *
 * Conventions for writers:
 * - Every ```ts (or ```tsx) block is its own module; blocks of one document
 *   share a folder, so one can import another.
 * - ```ts title="name.ts" names a block's file; other blocks import it as `./name`.
 * - `./server` is the reader's app (`appRouter`, `AppRouter`, `createContext`,
 *   `log`): test/docs-fixture/server.ts, unless the document has its own
 *   `title="server.ts"` block.
 * - There is no opt-out: a block that is not meant to compile is not ```ts.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
// One folder per run, so two test runs at once do not overwrite each other's files.
const out = join(root, 'packages/e2e/.docs-check', `run-${process.pid}`);
const fixture = fileURLToPath(new URL('./docs-fixture/server.ts', import.meta.url));

interface Block {
  doc: string;
  /** 1-based line of the block's first code line in the document. */
  line: number;
  file: string;
  code: string;
}

function documents(): string[] {
  const docs: string[] = [];
  if (existsSync(join(root, 'README.md'))) docs.push('README.md');
  for (const dir of ['docs']) {
    if (!existsSync(join(root, dir))) continue;
    for (const name of readdirSync(join(root, dir)).sort()) if (name.endsWith('.md')) docs.push(`${dir}/${name}`);
  }
  for (const parent of ['packages', 'examples']) {
    for (const name of readdirSync(join(root, parent)).sort()) {
      if (existsSync(join(root, parent, name, 'README.md'))) docs.push(`${parent}/${name}/README.md`);
    }
  }
  return docs;
}

const FENCE = /^(\s*)(`{3,})(ts|tsx|typescript)\b(.*)$/;

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(join(root, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent, ticks, lang, info] = open as unknown as [string, string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() !== ticks) body.push(lines[j++]!.slice(indent.length));
    const title = /title="([^"]+)"/.exec(info)?.[1];
    const ext = lang === 'tsx' ? 'tsx' : 'ts';
    blocks.push({ doc, line: i + 2, file: title ?? `block-${i + 2}.${ext}`, code: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

const folderOf = (doc: string) => doc.replace(/\.md$/, '').replace(/[/\\]/g, '__');

/** Diagnostics by document, each pointing at the document's own line. */
const errors = new Map<string, string[]>();
const blocks = new Map<string, Block[]>();

function tsc(cwd: string): Promise<string> {
  const bin = join(root, 'node_modules/typescript/bin/tsc');
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) =>
      resolve(stdout + stderr),
    );
  });
}

beforeAll(async () => {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const byFile = new Map<string, Block>();
  for (const doc of documents()) {
    const docBlocks = blocksOf(doc);
    blocks.set(doc, docBlocks);
    errors.set(doc, []);
    if (docBlocks.length === 0) continue;
    const folder = join(out, folderOf(doc));
    mkdirSync(folder, { recursive: true });
    for (const block of docBlocks) {
      const path = join(folder, block.file);
      if (existsSync(path)) errors.get(doc)!.push(`${doc}:${block.line - 1}: a second block is named ${block.file}`);
      writeFileSync(path, block.code);
      byFile.set(relative(out, path), block);
    }
    if (!docBlocks.some((block) => block.file === 'server.ts')) copyFileSync(fixture, join(folder, 'server.ts'));
  }
  writeFileSync(
    join(out, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../../../tsconfig.json',
      // Every block is a module even without imports, so blocks never share globals.
      compilerOptions: { noEmit: true, moduleDetection: 'force' },
      include: ['**/*.ts', '**/*.tsx'],
    }),
  );
  const output = await tsc(out);
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    if (!match) {
      // Anything else tsc says (a broken config) fails every document rather than none.
      if (line.trim()) for (const list of errors.values()) list.push(line);
      continue;
    }
    const [, file, row, column, message] = match as unknown as [string, string, string, string, string];
    const block = byFile.get(file);
    if (!block) {
      for (const list of errors.values()) list.push(line);
      continue;
    }
    errors.get(block.doc)!.push(`${block.doc}:${block.line + Number(row) - 1}:${column} (${block.file}) ${message}`);
  }
}, 180_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('TypeScript blocks in the docs', () => {
  it('finds the docs and their blocks', () => {
    expect([...blocks.keys()]).toContain('README.md');
    expect([...blocks.values()].flat().length).toBeGreaterThan(10);
  });

  it.each(documents())('%s compiles', (doc) => {
    expect(errors.get(doc)).toEqual([]);
  });
});
