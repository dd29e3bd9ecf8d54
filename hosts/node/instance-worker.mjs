// One plugin instance, on its own thread so the host can end it at the call
// deadline (Worker.terminate) without ending itself. Backend calls go to the
// main thread and wait for the answer (Atomics.wait + receiveMessageOnPort),
// since the component calls its imports synchronously.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import * as cli from '@bytecodealliance/preview2-shim/cli';
import * as clocks from '@bytecodealliance/preview2-shim/clocks';
import * as filesystem from '@bytecodealliance/preview2-shim/filesystem';
import * as io from '@bytecodealliance/preview2-shim/io';
import * as random from '@bytecodealliance/preview2-shim/random';

const { dir, name, modules, stateDir, memoryCap, port, signal: signalBuffer } = workerData;
const signal = new Int32Array(signalBuffer);
let clockSecs = null;

// The plugin's private directory is all of the filesystem it sees.
filesystem._setPreopens({ '/state': stateDir });

function backend(op) {
  return (...args) => {
    Atomics.store(signal, 0, 0);
    parentPort.postMessage({ type: 'backend', op, args });
    Atomics.wait(signal, 0, 0);
    const reply = receiveMessageOnPort(port).message;
    if (reply.crash !== undefined) throw new Error(reply.crash); // no payload: the instance traps
    if (reply.error !== undefined) {
      const e = new Error(`backend ${op}: ${reply.error.tag}`);
      e.payload = reply.error; // jco returns a thrown payload as the result's err
      throw e;
    }
    return reply.value;
  };
}

const systemClock = clocks.wallClock;
const imports = {
  'leasedb:plugin/backend': {
    listObjects: backend('list'),
    read: backend('read'),
    write: backend('write'),
    delete: backend('delete'),
    size: backend('size'),
    availableSpace: backend('available-space'),
  },
  'leasedb:plugin/types': {},
  'wasi:cli/environment': { getEnvironment: () => [], getArguments: () => [], initialCwd: () => undefined },
  'wasi:cli/exit': cli.exit,
  'wasi:cli/stderr': cli.stderr,
  'wasi:cli/stdin': cli.stdin,
  'wasi:cli/stdout': cli.stdout,
  'wasi:cli/terminal-input': cli.terminalInput,
  'wasi:cli/terminal-output': cli.terminalOutput,
  'wasi:cli/terminal-stderr': cli.terminalStderr,
  'wasi:cli/terminal-stdin': cli.terminalStdin,
  'wasi:cli/terminal-stdout': cli.terminalStdout,
  'wasi:clocks/monotonic-clock': clocks.monotonicClock,
  // The host's clock when it gives one (tests move it), the system's otherwise.
  'wasi:clocks/wall-clock': {
    now: () => (clockSecs === null ? systemClock.now() : { seconds: BigInt(clockSecs), nanoseconds: 0 }),
    resolution: () => systemClock.resolution(),
  },
  'wasi:filesystem/preopens': filesystem.preopens,
  'wasi:filesystem/types': filesystem.types,
  'wasi:io/error': io.error,
  'wasi:io/poll': io.poll,
  'wasi:io/streams': io.streams,
  'wasi:random/insecure-seed': random.insecureSeed,
  'wasi:random/insecure': random.insecure,
  'wasi:random/random': random.random,
};

const memories = [];
let exports;
try {
  const { instantiate } = await import(pathToFileURL(join(dir, `${name}.js`)).href);
  exports = instantiate(
    // Compiled by the host once, with the memory cap already written in.
    (file) => modules[file],
    imports,
    (module, importObject) => {
      const instance = new WebAssembly.Instance(module, importObject);
      for (const value of Object.values(instance.exports)) {
        if (value instanceof WebAssembly.Memory) memories.push(value);
      }
      return instance;
    },
  );
  parentPort.postMessage({ type: 'ready' });
} catch (e) {
  parentPort.postMessage({ type: 'trap', message: `instantiating: ${e?.message ?? e}`, memoryFull: false });
}

/** Whether a memory of this instance is at its cap (a trap then means exhaustion). */
function memoryFull() {
  // The plugin asks for memory in pieces of up to 16 MiB; one that no longer fits is the cap.
  return memories.some((m) => m.buffer.byteLength + (32 << 20) > memoryCap);
}

parentPort.on('message', (msg) => {
  if (msg.type !== 'call') return;
  clockSecs = msg.clock;
  try {
    const value = exports[msg.iface][msg.fn](...msg.args);
    parentPort.postMessage({ type: 'result', ok: value });
  } catch (e) {
    if (e && Object.prototype.hasOwnProperty.call(e, 'payload')) {
      parentPort.postMessage({ type: 'result', err: e.payload });
    } else {
      parentPort.postMessage({ type: 'trap', message: String(e?.message ?? e), memoryFull: memoryFull() });
    }
  }
});
