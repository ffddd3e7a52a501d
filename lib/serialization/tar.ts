// Just enough of tar to read the members of PyTorch <= 0.1.9 checkpoints
// ('sys_info', 'pickle', 'storages', 'tensors'): ustar, GNU and PAX headers.
import { FormatError, type Source } from './source.js';

export interface TarMember {
  offset: number;
  size: number;
}

/** Whether the bytes at 257 carry the ustar magic (POSIX and GNU tar both do). */
export function looksLikeTar(head: Buffer): boolean {
  return head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar';
}

function octal(b: Buffer, at: number, len: number, what: string): number {
  if (b[at] & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more.
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[at + i];
    if (!Number.isSafeInteger(v)) throw new FormatError(`tar: absurd ${what}`);
    return v;
  }
  const s = b
    .toString('latin1', at, at + len)
    .replace(/\0.*$/s, '')
    .trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new FormatError(`tar: malformed ${what} '${s}'`);
  return parseInt(s, 8);
}

/** The regular files of a tar archive by name. */
export function readTar(src: Source): Map<string, TarMember> {
  const members = new Map<string, TarMember>();
  let pos = 0;
  let longName: string | null = null;
  while (pos + 512 <= src.size) {
    const h = src.read(pos, 512);
    if (h.every((b) => b === 0)) break; // end-of-archive block
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    const stored = octal(h, 148, 8, 'checksum');
    if (stored !== sum) throw new FormatError(`tar: bad header checksum at byte ${pos}`);
    const size = octal(h, 124, 12, 'member size');
    const type = String.fromCharCode(h[156] || 48);
    const dataAt = pos + 512;
    if (dataAt + size > src.size) throw new FormatError(`tar: member at byte ${pos} runs past the end of the file`);
    let name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const prefix = h.toString('latin1', 257, 262) === 'ustar' ? h.toString('utf8', 345, 500).replace(/\0.*$/s, '') : '';
    if (prefix) name = `${prefix}/${name}`;
    if (longName !== null) {
      name = longName;
      longName = null;
    }
    if (type === 'L') {
      longName = src.read(dataAt, Math.min(size, 4096)).toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'x') {
      const pax = src.read(dataAt, Math.min(size, 1 << 16)).toString('utf8');
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(pax);
      if (m) longName = m[1];
    } else if (type === '0' || type === '7') {
      members.set(name, { offset: dataAt, size });
    }
    pos = dataAt + Math.ceil(size / 512) * 512;
  }
  return members;
}
