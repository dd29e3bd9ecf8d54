// The memory cap of an instance, as V8 enforces it: the maximum of every
// memory a core module defines is lowered to the cap, so `memory.grow` past it
// fails inside the plugin (whose allocator then aborts the call).

const PAGE = 65536;
const MEMORY_SECTION = 5;

function readU32(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, at];
  }
}

function writeU32(value) {
  const out = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

/** `wasm` (a core module) with each defined 32-bit memory's maximum at most `capBytes`. */
export function withMemoryMax(wasm, capBytes) {
  const capPages = Math.floor(capBytes / PAGE);
  const parts = [wasm.subarray(0, 8)];
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, bodyAt] = readU32(wasm, at + 1);
    const end = bodyAt + size;
    if (id !== MEMORY_SECTION) {
      parts.push(wasm.subarray(at, end));
    } else {
      let [count, p] = readU32(wasm, bodyAt);
      const body = [...writeU32(count)];
      for (; count > 0; count--) {
        const flags = wasm[p++];
        if (flags & ~0x03) throw new Error('memory64 or custom page sizes: cannot apply the memory cap');
        let min;
        let max = Infinity;
        [min, p] = readU32(wasm, p);
        if (flags & 0x01) [max, p] = readU32(wasm, p);
        body.push(flags | 0x01, ...writeU32(min), ...writeU32(Math.max(min, Math.min(max, capPages))));
      }
      parts.push(Uint8Array.of(id, ...writeU32(body.length), ...body));
    }
    at = end;
  }
  return Buffer.concat(parts);
}
