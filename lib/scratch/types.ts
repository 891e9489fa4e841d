// The scratch harness's types: what to make, and what was made.

export type ScratchKind = 'ext4' | 'xfs' | 'raw';

export interface ScratchOptions {
  kind: ScratchKind;
  /** Image size. Default 512 for ext4/xfs, 64 for raw. mkfs.xfs 6.x refuses anything below 300 MiB. */
  sizeMiB?: number;
  /** Extra mkfs arguments, appended after the defaults (e.g. ['-O', '^has_journal']). */
  mkfsArgs?: string[];
  /**
   * Set to false to drop the default mkfs tuning arguments (ext4: `-b 4096 -E lazy_itable_init=0,
   * lazy_journal_init=0`; xfs: `-b size=4096 -m reflink=1`) so mkfsArgs can choose differently
   * (mkfs.xfs rejects an option given twice). `-q` and the force flag are always passed.
   */
  mkfsDefaults?: boolean;
  /** `mount -o` options, e.g. 'data=journal' (ext4) or 'max_atomic_write=1m' (xfs). */
  mountOptions?: string;
  /** Goes into the directory name, to tell scratch filesystems apart when debugging. */
  label?: string;
}

export interface ScratchFs {
  kind: ScratchKind;
  /** The private temp dir we created (holds image + marker + mountpoint). */
  dir: string;
  /** The backing file. */
  image: string;
  /** /dev/loopN */
  loop: string;
  /** Absent for 'raw'. */
  mountpoint?: string;
  mountOptions?: string;
}
