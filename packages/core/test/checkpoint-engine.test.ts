/**
 * The checkpoint engine without a sandbox: hostile manifests are refused by the schema, sealed
 * files by their MAC, and the restore plan never goes through a live symlink.
 */
import { describe, expect, it } from 'vitest';
import {
  asciiJson,
  decimal,
  diffCapture,
  execManifestSchema,
  manifestJson,
  octal,
  parseChecked,
  planRestore,
  restoreScript,
  seal,
  sealJson,
  treeManifestSchema,
  unseal,
} from '../src/checkpoint/engine/index.js';
import { CheckpointCorruptError } from '../src/index.js';

const ID = 'ckpt-abc123-0123abcd';
const HASH = 'a'.repeat(64);
const info = { id: ID, createdAt: '2026-01-01T00:00:00.000Z', entries: 3, bytesStored: 5 };
const good = () => ({
  version: 2,
  info,
  entries: [
    { path: 'd', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
    {
      path: 'd/f',
      type: 'file',
      mode: 0o644,
      uid: 1000,
      gid: 1000,
      size: 5,
      hash: HASH,
      mtimeSec: 1_700_000_000,
      object: { pack: '0123456789abcdef' },
      exact: true,
    },
    { path: 'l', type: 'symlink', mode: 0o777, uid: 1000, gid: 1000, target: '../anywhere' },
  ],
});
const parse = (m: unknown) => parseChecked(execManifestSchema, JSON.stringify(m), ID, {});

/** A copy of the good manifest with one change to entry `i`. */
function edit(i: number, change: Record<string, unknown>): unknown {
  const m = good();
  Object.assign(m.entries[i]!, change);
  return m;
}

describe('manifest validation', () => {
  it('accepts a well-formed manifest', () => {
    expect(parse(good()).entries).toHaveLength(3);
  });

  it('accepts a stat key with the mtime in seconds, and one with it to the nanosecond (earlier stores)', () => {
    for (const key of [
      '12:5:1700000000:1700000001.000000007',
      '12:5:1700000000.123456789:1700000001.000000007',
    ])
      expect(parse(edit(1, { key })).entries[1]!.key).toBe(key);
  });

  it.each([
    ['a `..` component', edit(1, { path: 'd/../../etc/passwd' })],
    ['an absolute path', edit(1, { path: '/etc/passwd' })],
    ['an empty component', edit(1, { path: 'd//f' })],
    ['a `.` component', edit(1, { path: 'd/./f' })],
    ['a NUL', edit(1, { path: 'd/f\0' })],
    ['a char that is not a byte (U+0127)', edit(1, { path: "d/\u0127; touch pwned; '" })],
    ['a parent that is not in the manifest', edit(1, { path: 'e/f' })],
    ['a parent that is a symlink', edit(1, { path: 'l/f' })],
    ['a non-integer mode', edit(1, { mode: 420.5 })],
    ['a mode string', edit(1, { mode: '644; rm -rf /' })],
    ['a mode out of range', edit(1, { mode: 0o17777 })],
    ['shell text in uid', edit(1, { uid: '0; touch /pwned' })],
    ['a negative gid', edit(1, { gid: -1 })],
    ['a fractional mtime', edit(1, { mtimeSec: 1.5 })],
    ['an mtime that is text', edit(1, { mtimeSec: '$(reboot)' })],
    ['a bad hash', edit(1, { hash: 'A'.repeat(64) })],
    ['a short hash', edit(1, { hash: 'abc' })],
    ['a forged pack', edit(1, { object: { pack: '../../checkpoints' } })],
    ['a forged object path', edit(1, { object: { pack: '0123456789abcdef', path: '../../../etc/shadow' } })],
    ['an extra object field', edit(1, { object: { pack: '0123456789abcdef', file: '/etc/shadow' } })],
    ['a file without an object', edit(1, { object: undefined })],
    ['a directory with content', edit(0, { hash: HASH })],
    ['a symlink without target', edit(2, { target: undefined })],
    ['an unknown type', edit(2, { type: 'fifo' })],
    ['an unknown field', edit(0, { exec: 'rm -rf /' })],
    ['a stat key with shell text', edit(1, { key: '12:5:$(reboot):1.000000000' })],
    ['a stat key whose ctime is not to the nanosecond', edit(1, { key: '12:5:1700000000:1700000001' })],
  ])('refuses %s with CHECKPOINT_CORRUPT', (_why, manifest) => {
    expect(() => parse(manifest)).toThrow(CheckpointCorruptError);
    try {
      parse(manifest);
    } catch (error) {
      expect((error as CheckpointCorruptError).code).toBe('CHECKPOINT_CORRUPT');
    }
  });

  it('refuses duplicates, a manifest named for another id, and text that is not JSON', () => {
    const dup = good();
    dup.entries.push({ ...dup.entries[0]! });
    expect(() => parse(dup)).toThrow(/duplicate/);
    expect(() => parseChecked(execManifestSchema, JSON.stringify(good()), 'ckpt-other-0123abcd', {})).toThrow(
      /names itself/,
    );
    expect(() => parseChecked(execManifestSchema, '{"version":2,', ID, {})).toThrow(CheckpointCorruptError);
  });

  it('keeps odd names that are bytes: newlines, quotes, $(), invalid UTF-8, the bytes of U+0127', () => {
    const m = good();
    const odd = [
      'it\'s "q"',
      'line\nbreak',
      '$(touch pwned)',
      '\xff\xfe',
      Buffer.from('\u0127').toString('latin1'),
    ];
    for (const [i, name] of odd.entries())
      m.entries.push({ path: `d/${name}`, type: 'dir', mode: 0o700, uid: 0, gid: 0 } as never, {
        ...m.entries[1]!,
        path: `d/${name}/x${i}`,
      });
    expect(parse(m).entries).toHaveLength(3 + 2 * odd.length);
  });

  it('validates the tree store manifests too', () => {
    const tree = {
      info,
      entries: [
        { path: 'd', type: 'dir', mode: 0o755 },
        { path: 'd/f', type: 'file', mode: 0o644, hash: HASH, size: 1, mtimeNs: '1700000000000000000' },
      ],
    };
    expect(parseChecked(treeManifestSchema, JSON.stringify(tree), ID, {}).entries).toHaveLength(2);
    tree.entries[1]!.path = '../f';
    expect(() => parseChecked(treeManifestSchema, JSON.stringify(tree), ID, {})).toThrow(
      CheckpointCorruptError,
    );
  });
});

describe('sealed files', () => {
  const key = new Uint8Array(32).fill(7);

  it('a MAC is checked when the store has a key', () => {
    const file = seal({ a: 'ħ' }, key);
    expect(file).toMatch(/^\{"a":"\\u0127"\}\nhmac-sha256 [0-9a-f]{64}\n$/);
    expect(JSON.parse(unseal(file, key, ID, {}))).toEqual({ a: 'ħ' });
    const forged = file.replace('0127', '0128');
    expect(() => unseal(forged, key, ID, {})).toThrow(/MAC mismatch/);
    expect(() => unseal(file, new Uint8Array(32).fill(8), ID, {})).toThrow(CheckpointCorruptError);
    expect(() => unseal(seal({ a: 1 }, undefined), key, ID, {})).toThrow(/no MAC/);
  });

  it('without a key the MAC line is not needed, and odd text is refused', () => {
    expect(unseal(seal({ a: 1 }, undefined), undefined, ID, {})).toBe('{"a":1}');
    expect(unseal(seal({ a: 1 }, key), undefined, ID, {})).toBe('{"a":1}');
    expect(() => unseal('{"a":1}\nrm -rf /\n', undefined, ID, {})).toThrow(CheckpointCorruptError);
    expect(() => unseal('{"a":"\xff"}\n', undefined, ID, {})).toThrow(CheckpointCorruptError);
  });

  it("a manifest sealed from its entries' JSON made one by one is the same file as sealed whole", () => {
    const key = new Uint8Array(32).fill(7);
    const plain = execManifestSchema.parse(good());
    const odd = execManifestSchema.parse({
      ...good(),
      info: { ...info, label: 'ħ "quoted"\n' },
      entries: good().entries.map((e) => (e.type === 'symlink' ? { ...e, target: '\u00ff\u0001\u007f' } : e)),
    });
    const tarred = execManifestSchema.parse({
      ...good(),
      entries: good().entries.map((e) =>
        e.type === 'file' ? { ...e, object: { pack: '0123456789abcdef', tar: 0 } } : e,
      ),
      tars: { '0123456789abcdef/0': HASH },
    });
    for (const m of [plain, odd, tarred]) {
      const body = manifestJson(m, m.entries.map(asciiJson));
      expect(body).toBe(asciiJson(m));
      expect(sealJson(body, key)).toBe(seal(m, key));
    }
  });
});

describe('capture diff', () => {
  it('copies what changed, and what is too recent to trust (the racy-ctime rule)', () => {
    const known = new Map([
      ['same', { key: 'k1' }],
      ['changed', { key: 'k2' }],
      ['racy', { key: 'k3' }],
      ['untrusted', { key: undefined }],
    ]);
    const scanned = [
      { path: 'same', liveKey: 'k1', racy: false },
      { path: 'changed', liveKey: 'k2x', racy: false },
      { path: 'racy', liveKey: 'k3', racy: true },
      { path: 'untrusted', liveKey: 'k4', racy: false },
      { path: 'new', liveKey: 'k5', racy: false },
    ];
    const diff = diffCapture(known, scanned);
    expect(diff.reuse.map((r) => r.file.path)).toEqual(['same']);
    expect(diff.copy.map((f) => f.path)).toEqual(['changed', 'racy', 'untrusted', 'new']);
    expect(diffCapture(known, scanned, () => false).reuse).toEqual([]);
  });
});

describe('restore plan', () => {
  const m = parse(good());
  const live = (entries: Record<string, unknown>[]) =>
    new Map(entries.map((e) => [e.path as string, { uid: 1000, gid: 1000, mode: 0o755, ...e } as never]));

  it('removes a live symlink (or file) where the checkpoint has a directory before creating below it', () => {
    for (const type of ['symlink', 'file'] as const) {
      const plan = planRestore(m.entries, live([{ path: 'd', type, target: '/store' }]), {
        owners: false,
        unchanged: () => false,
      });
      expect(plan.remove).toEqual(['d']);
      expect(plan.create.map((c) => [c.kind, c.entry.path])).toEqual([
        ['mkdir', 'd'],
        ['write', 'd/f'],
        ['symlink', 'l'],
      ]);
    }
  });

  it('opens read-only live directories first and puts their modes back last, deepest first', () => {
    const plan = planRestore(
      m.entries,
      live([
        { path: 'd', type: 'dir', mode: 0o555 },
        { path: 'x', type: 'dir', mode: 0o500 },
        { path: 'x/y', type: 'dir', mode: 0o000 },
      ]),
      { owners: true, unchanged: () => false },
    );
    expect(plan.open).toEqual(['d', 'x', 'x/y']);
    expect(plan.remove).toEqual(['x']);
    expect(plan.dirModes.map((e) => e.path)).toEqual(['d']);
  });

  it('replaces a symlink whose target differs, and keeps unchanged files', () => {
    const plan = planRestore(
      m.entries,
      live([
        { path: 'd', type: 'dir' },
        { path: 'd/f', type: 'file', mode: 0o600, liveKey: 'k' },
        { path: 'l', type: 'symlink', target: '/elsewhere' },
      ]),
      { owners: false, unchanged: (_w, have) => have.liveKey === 'k' },
    );
    expect(plan.remove).toEqual(['l']);
    expect([...plan.kept]).toEqual(['d/f']);
    expect(plan.chmod.map((e) => e.path)).toEqual(['d/f']);
    expect(plan.create.map((c) => c.entry.path)).toEqual(['l']);
  });

  it('renders only validated integers and quoted words into the script', () => {
    expect(() => octal(0o644 + 0.5)).toThrow(/not a file mode/);
    expect(() => octal(Number.NaN)).toThrow();
    expect(() => decimal(1.5)).toThrow(/not an integer/);
    const plan = planRestore(m.entries, new Map(), { owners: true, unchanged: () => false });
    const script = restoreScript({ root: '/r', store: '/s' }, plan, {
      owners: true,
      nonce: 'ab12',
    })!.toString('latin1');
    expect(script).toContain(`mkdir -m 700 -- "$R/"'d'`);
    expect(script).toContain(`x 0123456789abcdef './d/f'`);
    expect(script).toContain(`chown -h 1000:1000 "$R/"'d'`);
    expect(script).toContain(`ln -s -- '../anywhere' "$R/"'l'`);
    const forged = { ...plan, chmod: [{ ...m.entries[1]!, mode: '777 /etc; touch /pwned' as never }] };
    expect(() =>
      restoreScript({ root: '/r', store: '/s' }, forged, { owners: true, nonce: 'ab12' }),
    ).toThrow();
  });
});
