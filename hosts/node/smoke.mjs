// Stores a file, reads it back and lists its lease, with the plugin over a
// directory backend in Tahoe's layout. Copy and adapt:
//
//     node smoke.mjs PATH/TO/leasedb_plugin.wasm [WORKDIR]

import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DirectoryBackend } from './backend.mjs';
import { Plugin, PluginError } from './host.mjs';

const [component, work = mkdtempSync(join(tmpdir(), 'leasedb-smoke-'))] = process.argv.slice(2);
const storage = new DirectoryBackend(join(work, 'storage'));
const plugin = await Plugin.start({ component, stateDir: join(work, 'state'), backend: storage });
try {
  const si = Uint8Array.from({ length: 16 }, (_, i) => i); // a storage index: 16 bytes
  const data = new TextEncoder().encode('hello, leasedb! '.repeat(1000));
  const session = 1n;
  await plugin.call('session-opened', session);
  // An account is {tag: 'anonymous'} or {tag: 'named', val: name}; u64 values are BigInt.
  const allocation = await plugin.call('allocate', session, { tag: 'named', val: 'alice' }, si, [0], BigInt(data.length));
  console.log('allocated shares:', allocation.allocated);
  await plugin.call('write', si, 0, 0n, data);
  await plugin.call('close', si, 0);
  const back = await plugin.call('read', si, 0, 0n, BigInt(data.length));
  if (Buffer.compare(Buffer.from(back), Buffer.from(data)) !== 0) throw new Error('read back different bytes');
  console.log('read back', back.length, 'bytes');
  for (const lease of await plugin.call('list-leases', si)) {
    console.log(`lease: share ${lease.shareNumber} account '${lease.accountName}' expires ${lease.expires}`);
  }
  try {
    await plugin.call('read', new Uint8Array(5), 0, 0n, 1n);
  } catch (e) {
    if (!(e instanceof PluginError)) throw e;
    console.log('a bad storage index is refused:', e.payload.tag, e.payload.val.tag);
  }
  await plugin.call('session-closed', session);
} finally {
  await plugin.stop();
}
console.log('files under', join(work, 'storage'), ':');
for (const entry of readdirSync(join(work, 'storage'), { recursive: true, withFileTypes: true })) {
  if (entry.isFile()) console.log('  ', relative(work, join(entry.parentPath ?? entry.path, entry.name)));
}
