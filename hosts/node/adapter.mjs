// The conformance adapter of the Node host: one fresh server per process (an
// in-memory backend with fault injection, call counts and a crash switch, a
// temporary state directory, a clock standing still), driven by JSON lines
// on stdin/stdout as conformance-tests/ADAPTER.md specifies.
//
//     node adapter.mjs --component PATH --test-faults-component PATH

import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'lossless-json';
import { BackendError, compareKeys, pageOf, validateKey } from './backend.mjs';
import {
  Crash, DeadlineExceeded, EXPORTS, MemoryExhausted, Plugin, PluginError, Trapped, Unavailable,
} from './host.mjs';
import { AdapterError, fromJson, readWit, toJson } from './wit.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const WIT = readWit(join(HERE, '..', '..', 'wit', 'since_v0.2'));
const BACKEND_CAPACITY = 1n << 30n;
const START_TIME = 1_700_000_000;
const NODE_ID = Uint8Array.from({ length: 20 }, (_, i) => i);
const OPS = ['list', 'read', 'write', 'delete', 'size', 'available-space'];

/** The objects, in memory, with the capacity the cases expect. */
class MemoryBackend {
  objects = new Map();

  used() {
    let n = 0n;
    for (const v of this.objects.values()) n += BigInt(v.length);
    return n;
  }

  sortedKeys() {
    return [...this.objects.keys()].sort(compareKeys);
  }

  listObjects(prefix, startAfter, limit) {
    validateKey(prefix, { prefix: true });
    const entries = this.sortedKeys().filter((k) => k.startsWith(prefix))
      .map((key) => ({ key, size: this.objects.get(key).length }));
    return pageOf(entries, startAfter, limit);
  }

  read(key, offset, length) {
    validateKey(key);
    const data = this.objects.get(key);
    if (data === undefined) throw BackendError.notFound();
    const start = offset < BigInt(data.length) ? Number(offset) : data.length;
    const end = offset + length < BigInt(data.length) ? Number(offset + length) : data.length;
    return data.subarray(start, end);
  }

  write(key, data) {
    validateKey(key);
    const after = this.used() - BigInt(this.objects.get(key)?.length ?? 0) + BigInt(data.length);
    if (after > BACKEND_CAPACITY) {
      throw new BackendError('permanent', `writing ${key}: no space (${after} bytes would exceed ${BACKEND_CAPACITY})`);
    }
    this.objects.set(key, Uint8Array.from(data));
  }

  delete(key) {
    validateKey(key);
    this.objects.delete(key);
  }

  size(key) {
    validateKey(key);
    const data = this.objects.get(key);
    if (data === undefined) throw BackendError.notFound();
    return data.length;
  }

  availableSpace() {
    const used = this.used();
    return used > BACKEND_CAPACITY ? 0n : BACKEND_CAPACITY - used;
  }
}

/** What the plugin sees: a crash switch, then faults and call counts, then memory. */
class TestBackend {
  faults = [];
  counts = Object.fromEntries(OPS.map((op) => [op, 0]));
  crash = null;

  constructor(memory) { this.memory = memory; }

  check(op, key) {
    if (this.crash !== null && this.crash.op === op && key.startsWith(this.crash.prefix)) {
      this.crash = null;
      throw new Crash(`the server crashed during ${op} ${key}`);
    }
    this.counts[op] += 1;
    const fault = this.faults.find((f) => f.op === op
      && (key.startsWith(f.prefix) || (op === 'list' && f.prefix.startsWith(key))));
    if (fault) throw new BackendError(fault.error.kind, fault.error.detail);
  }

  listObjects(prefix, startAfter, limit) { this.check('list', prefix); return this.memory.listObjects(prefix, startAfter, limit); }
  read(key, offset, length) { this.check('read', key); return this.memory.read(key, offset, length); }
  write(key, data) { this.check('write', key); return this.memory.write(key, data); }
  delete(key) { this.check('delete', key); return this.memory.delete(key); }
  size(key) { this.check('size', key); return this.memory.size(key); }
  availableSpace() { this.check('available-space', ''); return this.memory.availableSpace(); }
}

const num = (j) => Number(j?.value ?? j);
const op = (name) => { if (!OPS.includes(name)) throw new AdapterError(`unknown backend op ${name}`); return name; };
const b64 = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

class Server {
  constructor(components) {
    this.components = components;
    this.work = mkdtempSync(join(tmpdir(), 'leasedb-node-adapter-'));
    this.stateDir = join(this.work, 'state');
    this.memory = new MemoryBackend();
    this.backend = new TestBackend(this.memory);
    this.clock = START_TIME;
    this.plugin = null;
  }

  component(which) {
    const path = this.components[which];
    if (path === undefined) throw new AdapterError(`unknown component ${which}`);
    return path;
  }

  async stop() {
    if (this.plugin !== null) {
      const plugin = this.plugin;
      this.plugin = null;
      await plugin.stop();
    }
  }

  running() {
    if (this.plugin === null) throw new AdapterError('no instance is running (send `start` first)');
    return this.plugin;
  }

  async start({ options }) {
    await this.stop();
    const o = (name, fallback) => (options[name] === null || options[name] === undefined ? fallback : options[name]);
    const crawler = options.crawler ?? null;
    this.plugin = await Plugin.start({
      component: this.component(o('component', 'shipped')),
      stateDir: this.stateDir,
      backend: this.backend,
      chunkSize: num(o('chunk-size', 512 << 10)),
      maxImmutableSize: BigInt(o('max-immutable-size', 64n << 30n).toString()),
      nodeId: NODE_ID,
      memoryCap: num(o('memory-cap', 256 << 20)),
      callDeadlineMs: num(o('call-deadline-ms', 10_000)),
      clock: () => this.clock,
      ...(crawler === null ? {} : { crawler: fromJson(WIT.crawler.funcs.configure.params[0][1], crawler) }),
    });
    return toJson(WIT.lifecycle.funcs.init.result.ok, this.plugin.initReport);
  }

  async 'component-imports'({ component }) {
    const { componentWit } = await import('@bytecodealliance/jco');
    const wit = await componentWit(readFileSync(this.component(component)));
    return [...wit.matchAll(/^\s*import ([^;\s]+);/gm)].map((m) => m[1]);
  }

  'put-object'({ key, data }) { this.memory.write(key, Buffer.from(data, 'base64')); return null; }

  object({ key }) {
    const data = this.memory.objects.get(key);
    return data === undefined ? null : b64(data);
  }

  'delete-object'({ key }) { this.memory.delete(key); return null; }

  'object-keys'() { return this.memory.sortedKeys(); }

  fail({ op: name, 'key-prefix': prefix, error }) {
    const e = fromJson(WIT.backend.types?.['backend-error'] ?? backendErrorType(), error);
    this.backend.faults.push({ op: op(name), prefix, error: new BackendError(e.tag, e.val ?? '') });
    return null;
  }

  'clear-faults'() { this.backend.faults = []; return null; }

  calls({ op: name }) { return this.backend.counts[op(name)]; }

  'crash-during'({ op: name, 'key-prefix': prefix }) { this.backend.crash = { op: op(name), prefix }; return null; }

  now() { return this.clock; }

  'set-now'({ secs }) { this.clock = num(secs); return null; }

  'remove-database'() {
    for (const name of ['leasedb.sqlite3', 'leasedb.sqlite3-wal', 'leasedb.sqlite3-shm', 'leasedb.sqlite3-journal']) {
      try { unlinkSync(join(this.stateDir, 'plugin', name)); } catch (e) { if (e.code !== 'ENOENT') throw e; }
    }
    return null;
  }

  async call({ func, params }) {
    const plugin = this.running();
    const [iface, wit] = EXPORTS[func] ?? [];
    if (iface === undefined || ['init', 'handover', 'shutdown'].includes(func)) throw new AdapterError(`unknown function ${func}`);
    const type = WIT[iface].funcs[wit];
    if (params.length !== type.params.length) throw new AdapterError(`${func} takes ${type.params.length} parameters`);
    const args = type.params.map(([, t], n) => fromJson(t, params[n]));
    const isResult = type.result !== null && type.result.k === 'result';
    try {
      const value = await plugin.call(func, ...args);
      return toJson(isResult ? type.result.ok : type.result, value);
    } catch (e) {
      if (e instanceof PluginError && isResult) e.json = toJson(type.result.err, e.payload);
      throw e;
    }
  }
}

/** backend-error as the WIT reader sees it (it is only nested in results). */
function backendErrorType() {
  return WIT.backend.funcs.size.result.err;
}

function errorJson(e) {
  if (e instanceof PluginError) return { kind: 'plugin', error: e.json ?? { tag: e.payload?.tag } };
  if (e instanceof DeadlineExceeded) return { kind: 'deadline' };
  if (e instanceof MemoryExhausted) return { kind: 'memory-exhausted' };
  if (e instanceof Trapped) return { kind: 'trapped', message: e.message };
  if (e instanceof Unavailable) return { kind: 'unavailable', message: e.message };
  return { kind: 'adapter', message: `${e?.name ?? 'Error'}: ${e?.message ?? e}` };
}

async function main() {
  const { values } = parseArgs({ options: { component: { type: 'string' }, 'test-faults-component': { type: 'string' } } });
  if (!values.component) throw new Error('--component PATH is required');
  const components = { shipped: values.component };
  if (values['test-faults-component']) components['test-faults'] = values['test-faults-component'];
  const server = new Server(components);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      let id = null;
      let response;
      try {
        const request = parse(line);
        id = request.id ?? null;
        const handler = server[request.op];
        if (typeof handler !== 'function' || ['constructor', 'component', 'running'].includes(request.op)) {
          throw new AdapterError(`unknown op ${request.op}`);
        }
        response = { id, ok: (await handler.call(server, request.args ?? {})) ?? null };
      } catch (e) {
        if (!(e instanceof PluginError || e instanceof Trapped || e instanceof DeadlineExceeded
          || e instanceof MemoryExhausted || e instanceof Unavailable || e instanceof AdapterError)) {
          console.error(e);
        }
        response = { id, err: errorJson(e) };
      }
      process.stdout.write(`${stringify(response)}\n`);
    }
  } finally {
    await server.stop().catch(() => {});
    rmSync(server.work, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
