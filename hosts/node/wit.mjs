// The plugin's WIT types at run time: a small reader for the subset of WIT
// the plugin's interfaces use (records, variants, enums, type aliases, `use`,
// functions), and the mapping between the conformance protocol's JSON and the
// values jco's bindings take and return.
//
// jco's JS values: u64/s64 are BigInt, other integers numbers; list<u8> is a
// Uint8Array; record fields are lowerCamelCase; a variant is {tag, val}; an
// enum case is its name; option<T> is T or undefined; a result's err is thrown.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isLosslessNumber } from 'lossless-json';

const PRIMITIVES = new Set(['bool', 'u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64',
  'f32', 'f64', 'char', 'string']);
const WIDE = new Set(['u64', 's64']);

/** kebab-case → lowerCamelCase, as jco names functions and record fields. */
export function camel(name) {
  return name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function tokenize(text) {
  const tokens = [];
  const re = /\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/|(->|[{}()<>,:;=.@/*]|%?[A-Za-z_][A-Za-z0-9_-]*|[0-9]+(?:\.[0-9]+)*(?:-[A-Za-z0-9.]+)?)/gy;
  let m;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    if (m[1]) tokens.push(m[1].replace(/^%/, ''));
  }
  if (re.lastIndex < text.length) throw new Error(`WIT: cannot read at ${text.slice(re.lastIndex, re.lastIndex + 20)}`);
  return tokens;
}

/** Reads every `.wit` file of `dir`: {interfaces: {name: {types, funcs}}}. */
export function readWit(dir) {
  const interfaces = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.wit')).sort()) {
    parseFile(tokenize(readFileSync(join(dir, file), 'utf8')), interfaces);
  }
  // Resolve names now that every interface is known; a name is looked up in
  // the interface that wrote it.
  const resolve = (t) => {
    while (t !== null && (t.k === 'ref' || t.k === 'alias')) {
      if (t.k === 'alias') { t = t.t; continue; }
      const scope = interfaces[t.scope];
      const [owner, name] = scope.uses[t.name] ?? [t.scope, t.name];
      const target = interfaces[owner]?.types[name];
      if (!target) throw new Error(`WIT: unknown type ${t.name} in ${t.scope}`);
      t = target;
    }
    return t;
  };
  const seen = new Set();
  const walk = (t) => {
    if (t === null || seen.has(t)) return;
    seen.add(t);
    for (const key of ['e', 't', 'ok', 'err']) if (t[key] !== undefined && t[key] !== null) { t[key] = resolve(t[key]); walk(t[key]); }
    if (t.ts) t.ts = t.ts.map((x) => { const r = resolve(x); walk(r); return r; });
    if (t.fields) t.fields = t.fields.map(([n, x]) => { const r = resolve(x); walk(r); return [n, r]; });
    if (t.cases) t.cases = t.cases.map(([n, x]) => { const r = resolve(x); walk(r); return [n, r]; });
  };
  for (const iface of Object.values(interfaces)) {
    for (const f of Object.values(iface.funcs)) {
      f.params = f.params.map(([n, t]) => { const r = resolve(t); walk(r); return [n, r]; });
      f.result = resolve(f.result);
      walk(f.result);
    }
  }
  return interfaces;
}

function parseFile(tokens, interfaces) {
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const expect = (t) => { if (tokens[i] !== t) throw new Error(`WIT: expected ${t}, found ${tokens[i]}`); i++; };
  let current = null;
  const skipBlock = () => { expect('{'); let depth = 1; while (depth > 0) { const t = next(); if (t === '{') depth++; if (t === '}') depth--; } };
  const type = () => {
    const name = next();
    if (name === 'list') { expect('<'); const e = type(); expect('>'); return { k: 'list', e }; }
    if (name === 'option') { expect('<'); const t = type(); expect('>'); return { k: 'option', t }; }
    if (name === 'tuple') {
      expect('<'); const ts = [type()];
      while (peek() === ',') { next(); ts.push(type()); }
      expect('>'); return { k: 'tuple', ts };
    }
    if (name === 'result') {
      let ok = null; let err = null;
      if (peek() === '<') {
        next();
        if (peek() === '_') next(); else ok = type();
        if (peek() === ',') { next(); err = type(); }
        expect('>');
      }
      return { k: 'result', ok, err };
    }
    if (PRIMITIVES.has(name)) return { k: name };
    return { k: 'ref', name, scope: current };
  };
  while (i < tokens.length) {
    const word = next();
    if (word === 'package') { while (next() !== ';'); continue; }
    if (word === 'world') { next(); skipBlock(); continue; }
    if (word !== 'interface') throw new Error(`WIT: unexpected ${word}`);
    const name = next();
    current = name;
    const iface = interfaces[name] ?? (interfaces[name] = { name, types: {}, funcs: {}, uses: {} });
    expect('{');
    while (peek() !== '}') {
      const w = next();
      if (w === 'use') {
        const owner = next(); expect('.'); expect('{');
        while (peek() !== '}') {
          const used = next();
          let local = used;
          if (peek() === 'as') { next(); local = next(); }
          iface.uses[local] = [owner, used];
          if (peek() === ',') next();
        }
        expect('}'); expect(';');
      } else if (w === 'type') {
        const n = next(); expect('='); iface.types[n] = { k: 'alias', t: type() }; expect(';');
      } else if (w === 'record' || w === 'variant' || w === 'enum' || w === 'flags') {
        const n = next(); expect('{');
        const items = [];
        while (peek() !== '}') {
          const item = next();
          if (w === 'record') { expect(':'); items.push([item, type()]); }
          else if (w === 'variant' && peek() === '(') { next(); items.push([item, type()]); expect(')'); }
          else items.push([item, null]);
          if (peek() === ',') next();
        }
        expect('}');
        iface.types[n] = w === 'record' ? { k: 'record', fields: items }
          : w === 'variant' ? { k: 'variant', cases: items }
            : { k: w, names: items.map(([x]) => x) };
      } else {
        expect(':'); expect('func'); expect('(');
        const params = [];
        while (peek() !== ')') { const p = next(); expect(':'); params.push([p, type()]); if (peek() === ',') next(); }
        expect(')');
        let result = null;
        if (peek() === '->') { next(); result = type(); }
        expect(';');
        iface.funcs[w] = { params, result };
      }
    }
    expect('}');
  }
}

/** A protocol JSON value (numbers as lossless-json LosslessNumber) → jco's JS value. */
export function fromJson(t, j) {
  switch (t.k) {
    case 'bool': case 'string': case 'char': return j;
    case 'f32': case 'f64': return Number(j);
    case 'list':
      if (t.e.k === 'u8') return new Uint8Array(Buffer.from(j, 'base64'));
      return j.map((x) => fromJson(t.e, x));
    case 'option': return j === null ? undefined : fromJson(t.t, j);
    case 'tuple': return t.ts.map((x, n) => fromJson(x, j[n]));
    case 'record': return Object.fromEntries(t.fields.map(([n, f]) => [camel(n), fromJson(f, j[n])]));
    case 'enum': return j.tag;
    case 'variant': {
      const c = t.cases.find(([n]) => n === j.tag);
      if (!c) throw new AdapterError(`no case ${j.tag}`);
      return c[1] === null ? { tag: j.tag } : { tag: j.tag, val: fromJson(c[1], j.val) };
    }
    default:
      if (WIDE.has(t.k)) return BigInt(isLosslessNumber(j) ? j.value : String(j));
      return Number(isLosslessNumber(j) ? j.value : j);
  }
}

/** jco's JS value → protocol JSON (64-bit integers stay BigInt for a lossless stringify). */
export function toJson(t, v) {
  if (t === null) return null;
  switch (t.k) {
    case 'bool': case 'string': case 'char': case 'f32': case 'f64': return v;
    case 'list':
      if (t.e.k === 'u8') return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
      return Array.from(v, (x) => toJson(t.e, x));
    case 'option': return v === undefined || v === null ? null : toJson(t.t, v);
    case 'tuple': return t.ts.map((x, n) => toJson(x, v[n]));
    case 'record': return Object.fromEntries(t.fields.map(([n, f]) => [n, toJson(f, v[camel(n)])]));
    case 'enum': return { tag: v };
    case 'variant': {
      const c = t.cases.find(([n]) => n === v.tag);
      return c[1] === null ? { tag: v.tag } : { tag: v.tag, val: toJson(c[1], v.val) };
    }
    default:
      return WIDE.has(t.k) ? BigInt(v) : Number(v);
  }
}

/** The request could not be understood. */
export class AdapterError extends Error {}
