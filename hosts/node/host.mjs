// Runs the leasedb component in Node for a JS server: the component
// transpiled by jco, one instance on a worker thread (so a call past its
// deadline can be ended), calls in series, the backend supplied by the
// caller, the sandbox limited to the plugin's own directory.

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { BackendError } from './backend.mjs';
import { withMemoryMax } from './memory-cap.mjs';
import { NAME, transpiled } from './transpile.mjs';
import { camel } from './wit.mjs';

export const INTERFACE_VERSION = '0.2.0';
export const DEFAULT_CRAWLER = { policy: { tag: 'disabled' }, historyLimit: 10, minCycleSeconds: 12n * 3600n };
/** Most bytes one backend read returns (what the guest can make the host allocate). */
export const MAX_READ_LENGTH = 64n << 20n;
/** Most entries one listing returns. */
export const MAX_LIST_LIMIT = 10_000;
/** How long starting a worker and instantiating may take (compiling is not the plugin's time). */
export const INSTANTIATE_TIMEOUT_MS = 120_000;
/** The handover that asks a fresh instance to take over the uploads in flight
 * its dead predecessor staged in the state directory (EMBEDDING.md). */
export const RESUME_HANDOVER = Uint8Array.of(1);

/** Compiled core modules by transpiled folder and memory cap: compiled once, shared by workers. */
const compiled = new Map();

async function coreModules(dir, memoryCap) {
  const key = `${dir}\0${memoryCap}`;
  if (!compiled.has(key)) {
    const modules = {};
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.wasm'))) {
      modules[file] = await WebAssembly.compile(withMemoryMax(readFileSync(join(dir, file)), memoryCap));
    }
    compiled.set(key, modules);
  }
  return compiled.get(key);
}

/** Call name → [interface, WIT function]; `mutable-read` and the crawler's are renamed. */
export const EXPORTS = {};
for (const [iface, names] of Object.entries({
  storage: ['allocate', 'write', 'close', 'abort', 'list-shares', 'read', 'add-lease', 'list-leases', 'list-all-shares'],
  mutable: ['read-test-write', ['mutable-read', 'read']],
  accounting: ['get-capabilities', 'advise-corrupt', 'list-advisories', 'get-usage', 'usage-by-account', 'get-stats'],
  crawler: [['crawler-configure', 'configure'], ['crawler-run-slice', 'run-slice'], ['crawler-status', 'status']],
  lifecycle: ['init', 'handover', 'info', 'schema-version', 'begin-batch', 'commit-batch', 'session-opened', 'session-closed', 'shutdown'],
})) {
  for (const n of names) {
    const [call, wit] = Array.isArray(n) ? n : [n, n];
    EXPORTS[call] = [iface, wit];
  }
}

/** A plugin call failed. */
export class CallError extends Error {}
/** The plugin answered with its WIT error; `payload` is it ({tag, val}). */
export class PluginError extends CallError {
  constructor(payload) {
    super(payload?.val === undefined ? payload?.tag : `${payload.tag}: ${JSON.stringify(payload.val, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
    this.payload = payload;
  }
}
/** The instance died in this call; the next call is served by a fresh one. */
export class InstanceDied extends CallError {}
export class Trapped extends InstanceDied {}
export class DeadlineExceeded extends InstanceDied {}
export class MemoryExhausted extends InstanceDied {}
/** No instance could be started. */
export class Unavailable extends CallError {}

/**
 * One running plugin. `await Plugin.start({...})`, then `await plugin.call('add-lease', account, si)`
 * (arguments and results as jco maps WIT: u64 as BigInt, list<u8> as Uint8Array, records
 * with camelCase fields, variants as {tag, val}); `await plugin.stop()` at the end.
 */
export class Plugin {
  static async start(options) {
    const plugin = new Plugin(options);
    await plugin.#launch();
    return plugin;
  }

  #dir;
  #backend;
  #config;
  #crawler;
  #worker = null;
  #pending = null;
  #port = null;
  #signal = null;
  #queue = Promise.resolve();
  #deathsInARow = 0;

  constructor({
    component, stateDir, backend,
    chunkSize = 512 << 10, leaseDuration = 31n * 86400n,
    maxImmutableSize = 64n << 30n, maxMutableSize = 64n << 30n, nodeId,
    crawler = DEFAULT_CRAWLER, memoryCap = 256 << 20, callDeadlineMs = 10_000, initDeadlineMs = 300_000, clock = null,
  }) {
    this.component = component;
    this.stateDir = resolve(stateDir);
    this.pluginDir = join(this.stateDir, 'plugin');
    mkdirSync(this.pluginDir, { recursive: true });
    this.#backend = backend;
    this.memoryCap = memoryCap;
    this.callDeadlineMs = callDeadlineMs;
    // A cold start's recovery grows with the store, not with one request.
    this.initDeadlineMs = Math.max(initDeadlineMs, callDeadlineMs);
    this.clock = clock;
    this.#config = {
      chunkSize, leaseDuration: BigInt(leaseDuration),
      maxImmutableSize: BigInt(maxImmutableSize), maxMutableSize: BigInt(maxMutableSize),
      nodeId: nodeId ?? loadOrCreateNodeId(this.stateDir),
    };
    this.#crawler = crawler;
    this.initReport = null;
    this.restarts = 0;
  }

  /** Calls export `name` (see EXPORTS); resolves to its ok value or rejects with a CallError. */
  call(name, ...args) {
    const run = this.#queue.then(async () => {
      if (this.#worker === null) {
        this.restarts += 1;
        await this.#relaunch();
      }
      if (name === 'crawler-configure') this.#crawler = args[0]; // kept for fresh instances
      return this.#invoke(name, args);
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Lets the plugin close its database cleanly, then ends the instance. */
  async stop() {
    const run = this.#queue.then(async () => {
      if (this.#worker !== null) {
        try { await this.#invoke('shutdown', []); } catch { /* nobody to tell */ }
      }
      await this.#end();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Replaces a dead instance. After one death the new instance takes over the
   * uploads in flight the dead one staged, so only the fatal call failed; after
   * a second death in a row it starts cold (the staged state may be what kills it). */
  async #relaunch() {
    if (this.#deathsInARow <= 1) {
      try {
        await this.#launch(RESUME_HANDOVER);
        return;
      } catch (e) {
        process.stderr.write(`leasedb host: the uploads in flight could not be taken over (${e.message}); starting cold\n`);
      }
    }
    await this.#launch();
  }

  async #launch(handover = undefined) {
    const dir = await transpiled(this.component);
    const modules = await coreModules(dir, this.memoryCap);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#signal = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./instance-worker.mjs', import.meta.url), {
      workerData: { dir, name: NAME, modules, stateDir: this.pluginDir, memoryCap: this.memoryCap, port: port2, signal: this.#signal.buffer },
      transferList: [port2],
      stdout: false,
      stderr: false,
    });
    this.#worker = worker;
    // Events of an instance already replaced must not settle its successor's calls.
    const current = (f) => (arg) => { if (this.#worker === worker) f(arg); };
    worker.on('message', current((msg) => this.#onMessage(msg)));
    worker.on('error', current((e) => this.#settle({ type: 'trap', message: String(e?.message ?? e), memoryFull: false })));
    worker.on('exit', current(() => this.#settle({ type: 'trap', message: 'the instance thread ended', memoryFull: false })));
    try {
      await this.#await('instantiating', INSTANTIATE_TIMEOUT_MS);
      this.initReport = await this.#invoke('init', [this.#config, handover], this.initDeadlineMs);
      await this.#invoke('crawler-configure', [this.#crawler], this.initDeadlineMs);
    } catch (e) {
      await this.#end();
      throw new Unavailable(`the plugin could not start: ${e.message}`, { cause: e });
    }
  }

  async #end() {
    // Taken before awaiting: a relaunch may set new ones meanwhile.
    const worker = this.#worker;
    const port = this.#port;
    this.#worker = null;
    this.#port = null;
    if (worker !== null) await worker.terminate();
    port?.close();
  }

  async #invoke(name, args, deadlineMs = this.callDeadlineMs) {
    const [iface, wit] = EXPORTS[name] ?? [];
    if (iface === undefined) throw new CallError(`no such export: ${name}`);
    this.#worker.postMessage({ type: 'call', iface, fn: camel(wit), args, clock: this.clock ? this.clock() : null });
    const reply = await this.#await(name, deadlineMs);
    if (reply.err !== undefined) throw new PluginError(reply.err);
    return reply.ok;
  }

  /** The next answer of the instance, or its death (trap, deadline). */
  #await(what, deadlineMs = this.callDeadlineMs) {
    return new Promise((resolveReply, rejectReply) => {
      const timer = setTimeout(() => {
        this.#settle({ type: 'deadline' });
      }, deadlineMs);
      this.#pending = (msg) => {
        clearTimeout(timer);
        this.#pending = null;
        if (msg.type === 'ready') return resolveReply(msg);
        if (msg.type === 'result') {
          this.#deathsInARow = 0;
          return resolveReply(msg);
        }
        // The instance is dead (or must be): the next call gets a fresh one.
        this.#deathsInARow += 1;
        this.#end();
        if (msg.type === 'deadline') return rejectReply(new DeadlineExceeded(`${what} ran past its deadline`));
        if (msg.memoryFull) return rejectReply(new MemoryExhausted(`${what}: the plugin reached its memory cap`));
        return rejectReply(new Trapped(`${what}: ${msg.message}`));
      };
    });
  }

  #settle(msg) {
    if (this.#pending !== null) this.#pending(msg);
  }

  #onMessage(msg) {
    if (msg.type === 'backend') {
      this.#serveBackend(msg.op, msg.args);
    } else {
      this.#settle(msg);
    }
  }

  async #serveBackend(op, args) {
    const port = this.#port;
    const signal = this.#signal;
    let reply;
    try {
      reply = { value: await backendCall(this.#backend, op, args) };
    } catch (e) {
      if (e instanceof BackendError) {
        reply = { error: e.wit() };
      } else if (e instanceof Crash) {
        reply = { crash: e.message };
      } else {
        reply = { crash: `the backend failed: ${e?.message ?? e}` };
      }
    }
    port.postMessage(reply);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  }
}

/** Thrown by a backend to kill the instance in the middle of a call (tests). */
export class Crash extends Error {}

async function backendCall(backend, op, args) {
  switch (op) {
    case 'list': {
      const [prefix, startAfter, limit] = args;
      const page = await backend.listObjects(prefix, startAfter ?? null, Math.min(limit, MAX_LIST_LIMIT));
      return { entries: page.entries.map((e) => ({ key: e.key, size: BigInt(e.size) })), next: page.next ?? undefined };
    }
    case 'read': {
      const [key, offset, length] = args;
      if (length > MAX_READ_LENGTH) {
        // "Everything" is fine while what is there fits; truncating would look like the end.
        const remaining = BigInt(await backend.size(key)) - offset;
        if (remaining > MAX_READ_LENGTH) {
          throw new BackendError('permanent', `reading ${key}: ${remaining} bytes at once; at most ${MAX_READ_LENGTH} per read`);
        }
      }
      return new Uint8Array(await backend.read(key, offset, length));
    }
    case 'write': return void (await backend.write(args[0], args[1]));
    case 'delete': return void (await backend.delete(args[0]));
    case 'size': return BigInt(await backend.size(args[0]));
    case 'available-space': return BigInt(await backend.availableSpace());
    default: throw new Error(`unknown backend op ${op}`);
  }
}

/** This server's 20-byte node id, kept in `<stateDir>/node-id`. */
function loadOrCreateNodeId(stateDir) {
  const path = join(stateDir, 'node-id');
  try {
    const data = readFileSync(path);
    if (data.length === 20) return new Uint8Array(data);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  const id = randomBytes(20);
  writeFileSync(`${path}.tmp`, id);
  const fd = openSync(`${path}.tmp`, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(`${path}.tmp`, path);
  return new Uint8Array(id);
}
