// Transpiles a component with jco into `generated/<sha256>/` (ignored by
// git), once per component: `node transpile.mjs PLUGIN.wasm` prints the folder.
// `instantiation: sync` makes the output a function the host calls for each
// fresh instance, with the imports (WASI, the backend) it chooses.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const GENERATED = join(HERE, 'generated');
export const NAME = 'leasedb_plugin';

/** The folder holding the transpiled `component` (a path or bytes). */
export async function transpiled(component) {
  const bytes = typeof component === 'string' ? readFileSync(component) : component;
  const digest = createHash('sha256').update(bytes).digest('hex');
  const dir = join(GENERATED, digest);
  if (existsSync(join(dir, `${NAME}.js`))) return dir;
  const { transpile } = await import('@bytecodealliance/jco');
  const { files } = await transpile(bytes, {
    name: NAME,
    instantiation: 'sync',
    noTypescript: true,
    quiet: true,
  });
  // Written aside and renamed, so a concurrent run never sees half a folder.
  const temp = `${dir}.tmp-${process.pid}`;
  rmSync(temp, { recursive: true, force: true });
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(temp, name)), { recursive: true });
    writeFileSync(join(temp, name), data);
  }
  try {
    renameSync(temp, dir);
  } catch (e) {
    rmSync(temp, { recursive: true, force: true });
    if (!existsSync(join(dir, `${NAME}.js`))) throw e;
  }
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.length < 3) {
    console.error('usage: node transpile.mjs PLUGIN.wasm...');
    process.exit(2);
  }
  for (const path of process.argv.slice(2)) console.log(await transpiled(path));
}
