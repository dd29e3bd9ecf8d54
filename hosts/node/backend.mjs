// The object storage the plugin imports (`leasedb:plugin/backend@0.2.0`).
//
// A backend is any object with these methods (each may be async, and fails by
// throwing BackendError): listObjects(prefix, startAfter, limit) →
// {entries: [{key, size}], next}, read(key, offset, length) → bytes,
// write(key, data), delete(key), size(key), availableSpace().
// DirectoryBackend keeps objects as files in Tahoe's disk layout.

import { constants } from 'node:fs';
import { mkdir, open, opendir, rename, rm, rmdir, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export const MAX_KEY_LEN = 1024;
export const MAX_SEGMENT_LEN = 255;

/** A backend call failed; `kind` is the WIT backend-error case. */
export class BackendError extends Error {
  static KINDS = ['not-found', 'transient', 'permanent', 'invalid-key'];

  constructor(kind, message = '') {
    if (!BackendError.KINDS.includes(kind)) throw new Error(`not a backend-error case: ${kind}`);
    super(message ? `${kind}: ${message}` : kind);
    this.kind = kind;
    this.detail = message;
  }

  static notFound() { return new BackendError('not-found'); }

  /** The WIT value, as jco takes it. */
  wit() { return this.kind === 'not-found' ? { tag: this.kind } : { tag: this.kind, val: this.detail }; }
}

/** Refuses keys (or, with `prefix`, listing prefixes) that could escape a root or are not portable. */
export function validateKey(key, { prefix = false } = {}) {
  if (key === '') {
    if (prefix) return;
    throw new BackendError('invalid-key', 'the key is empty');
  }
  if (Buffer.byteLength(key) > MAX_KEY_LEN) throw new BackendError('invalid-key', `longer than ${MAX_KEY_LEN} bytes`);
  if (key.startsWith('/') || key.includes('\0') || key.includes('\\')) {
    throw new BackendError('invalid-key', `${JSON.stringify(key.slice(0, 80))} is absolute or has NUL or a backslash`);
  }
  const segments = key.split('/');
  if (prefix) {
    const last = segments.pop(); // may be partial or empty
    if (last === '.' || last === '..' || Buffer.byteLength(last) > MAX_SEGMENT_LEN) {
      throw new BackendError('invalid-key', `${JSON.stringify(key.slice(0, 80))} has a bad last segment`);
    }
  }
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || Buffer.byteLength(s) > MAX_SEGMENT_LEN) {
      throw new BackendError('invalid-key', `${JSON.stringify(key.slice(0, 80))} has a bad segment`);
    }
  }
}

/** Keys compare as bytes (UTF-8), as the plugin expects of a listing. */
export function compareKeys(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The page of at most `limit` entries after `startAfter` from entries in ascending order. */
export function pageOf(sorted, startAfter, limit) {
  const entries = [];
  for (const entry of sorted) {
    if (startAfter !== null && compareKeys(entry.key, startAfter) <= 0) continue;
    if (entries.length === limit) {
      // With limit 0 nothing was taken: resume from where the caller asked.
      return { entries, next: entries.length ? entries[entries.length - 1].key : (startAfter ?? '') };
    }
    entries.push(entry);
  }
  return { entries, next: null };
}

const TEMP_MARKER = '.tmp-';
let tempCounter = 0;

/**
 * Objects as files under `root` in Tahoe's layout: key `shares/aa/<si>/0` is
 * `<root>/shares/aa/<si>/0`, so an existing Tahoe `storage/` directory is a
 * valid root. A write goes to a temporary file that is fsynced and renamed
 * over the key, then the directory is fsynced: durable before it returns.
 */
export class DirectoryBackend {
  constructor(root) {
    this.root = resolve(root);
  }

  #path(key) {
    validateKey(key);
    if (key.split('/').pop().startsWith(TEMP_MARKER)) {
      throw new BackendError('invalid-key', `names starting ${TEMP_MARKER} are this store's`);
    }
    return join(this.root, key);
  }

  static #failure(doing, key, e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'EISDIR') return BackendError.notFound();
    const transient = ['EAGAIN', 'EINTR', 'EBUSY', 'ENOSPC', 'EMFILE'].includes(e.code);
    return new BackendError(transient ? 'transient' : 'permanent', `${doing} ${key}: ${e.message}`);
  }

  async listObjects(prefix, startAfter, limit) {
    validateKey(prefix, { prefix: true });
    const dirKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const found = [];
    await this.#walk(dirKey, prefix, startAfter, limit + 1, found);
    return pageOf(found, startAfter, limit);
  }

  /** Entries under `dirKey` in key order into `out`, up to `want`. */
  async #walk(dirKey, prefix, startAfter, want, out) {
    let dir;
    try {
      dir = await opendir(join(this.root, dirKey));
    } catch (e) {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return;
      throw DirectoryBackend.#failure('listing', prefix, e);
    }
    const children = [];
    for await (const entry of dir) {
      if (entry.name.startsWith(TEMP_MARKER) || entry.isSymbolicLink()) continue;
      if (entry.isDirectory()) children.push([`${dirKey}${entry.name}/`, true]);
      else if (entry.isFile()) children.push([`${dirKey}${entry.name}`, false]);
    }
    children.sort(([a], [b]) => compareKeys(a, b));
    for (const [key, isDir] of children) {
      if (out.length >= want) return;
      if (isDir) {
        const relevant = key.startsWith(prefix) || prefix.startsWith(key);
        const passed = startAfter !== null && compareKeys(key, startAfter) < 0 && !startAfter.startsWith(key);
        if (relevant && !passed) await this.#walk(key, prefix, startAfter, want, out);
      } else if (key.startsWith(prefix) && (startAfter === null || compareKeys(key, startAfter) > 0)) {
        try {
          out.push({ key, size: (await stat(join(this.root, key))).size });
        } catch (e) {
          if (e.code !== 'ENOENT') throw DirectoryBackend.#failure('listing', prefix, e);
        }
      }
    }
  }

  async read(key, offset, length) {
    const path = this.#path(key);
    let file;
    try {
      file = await open(path, 'r');
      const size = BigInt((await file.stat()).size);
      const start = offset < size ? offset : size;
      const end = start + length < size ? start + length : size;
      const buffer = Buffer.alloc(Number(end - start));
      let done = 0;
      while (done < buffer.length) {
        const { bytesRead } = await file.read(buffer, done, buffer.length - done, Number(start) + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } catch (e) {
      throw e instanceof BackendError ? e : DirectoryBackend.#failure('reading', key, e);
    } finally {
      await file?.close();
    }
  }

  async write(key, data) {
    const path = this.#path(key);
    const dir = dirname(path);
    const temp = join(dir, `${TEMP_MARKER}${path.split('/').pop()}-${process.pid}-${tempCounter++}`);
    try {
      await this.#makeDirs(dir);
      const file = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        await file.writeFile(data);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, path);
      await syncDir(dir);
    } catch (e) {
      await rm(temp, { force: true });
      const failure = DirectoryBackend.#failure('writing', key, e);
      throw failure.kind === 'not-found' ? new BackendError('transient', `writing ${key}: a directory vanished`) : failure;
    }
  }

  async #makeDirs(dir) {
    if (dir === this.root) return mkdir(dir, { recursive: true });
    try {
      if ((await stat(dir)).isDirectory()) return undefined;
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    await this.#makeDirs(dirname(dir));
    try {
      await mkdir(dir);
    } catch (e) {
      if (e.code === 'EEXIST') return undefined;
      throw e;
    }
    return syncDir(dirname(dir));
  }

  async delete(key) {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (e) {
      if (e.code === 'ENOENT') return;
      throw DirectoryBackend.#failure('deleting', key, e);
    }
    const dir = dirname(path);
    await syncDir(dir);
    if (dir !== this.root) {
      try {
        await rmdir(dir);
        await syncDir(dirname(dir));
      } catch { /* not empty: fine */ }
    }
  }

  async size(key) {
    const path = this.#path(key);
    let s;
    try {
      s = await stat(path);
    } catch (e) {
      throw DirectoryBackend.#failure('sizing', key, e);
    }
    if (!s.isFile()) throw BackendError.notFound();
    return s.size;
  }

  async availableSpace() {
    await mkdir(this.root, { recursive: true });
    const s = await statfs(this.root, { bigint: true });
    return s.bavail * s.bsize;
  }
}

async function syncDir(dir) {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
