// Progress on stderr: a bar redrawn in place on a terminal, one line per step otherwise.

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private current = '';
  private readonly tty: boolean;
  private drawn = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private total: number,
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
    if (enabled && this.tty) {
      this.timer = setInterval(() => this.draw(), 500);
      this.timer.unref();
    }
  }

  /** A line of its own (setup steps, warnings), above the bar. */
  log(message: string): void {
    if (!this.enabled) return;
    this.clear();
    this.stream.write(`${message}\n`);
    this.draw();
  }

  /** Starts step `label` (workload, filesystem, contender). */
  step(label: string): void {
    this.current = label;
    if (!this.enabled) return;
    if (this.tty) this.draw();
    else this.stream.write(`[${String(this.done + 1).padStart(String(this.total).length)}/${this.total}] ${label}\n`);
  }

  /** Marks `n` steps done (skipped steps count too). */
  advance(n = 1): void {
    this.done = Math.min(this.total, this.done + n);
    if (this.enabled && this.tty) this.draw();
  }

  addSteps(n: number): void {
    this.total += n;
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private clear(): void {
    if (this.tty && this.drawn) {
      this.stream.write('\r\x1b[K');
      this.drawn = false;
    }
  }

  private draw(): void {
    if (!this.enabled || !this.tty) return;
    const width = 24;
    const frac = this.total ? this.done / this.total : 0;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = this.done > 0 && this.done < this.total ? ` ~${clock((elapsed / this.done) * (this.total - this.done))} left` : '';
    const columns = this.stream.columns || 100;
    let line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}% ${this.done}/${this.total} ${clock(elapsed)}${eta}  ${this.current}`;
    if (line.length > columns - 1) line = line.slice(0, columns - 2) + '…';
    this.stream.write(`\r\x1b[K${line}`);
    this.drawn = true;
  }
}
