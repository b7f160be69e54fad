/**
 * Functions run one at a time per key, in call order (a workflow's control changes, a
 * dependent's settling); a failure does not stop the next. Keys with nothing queued are
 * forgotten, so the map holds only what is in flight.
 */
export class KeyedSerial {
  private readonly chains = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(key, next);
    void next
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      })
      .catch(() => {});
    return next;
  }
}
