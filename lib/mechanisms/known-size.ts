// The file's size as this handle knows it: statx at open, then each completed
// extending write, allocate and truncate; read again (statx) before an extending
// write, since another handle or process may have grown or cut the file.
export class KnownSize {
  constructor(public value: number) {}

  /** A completed write or allocate left the file at least `end` long. */
  grow(end: number): void {
    if (end > this.value) this.value = end;
  }
}
