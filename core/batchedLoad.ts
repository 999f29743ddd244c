// Reads of one key each that arrive together share one statement: a fleet reconnecting to a replica that
// just started sends thousands of first requests at once, and each would otherwise cost a query. At most
// one read runs at a time; the keys asked for meanwhile go in the next, which starts after its callers
// arrived, so none of them sees an older row than a read of its own would have.

/** A loader of values by key: `read` gets up to `maxBatch` distinct keys and answers those it found. */
export function batchedLoader<V>(
  read: (keys: string[]) => Promise<Map<string, V>>,
  maxBatch: number,
  /** Called as each read starts (counters). */
  onRead?: () => void,
): (key: string) => Promise<V | undefined> {
  type Waiting = { resolve(value: V | undefined): void; reject(error: unknown): void };
  let queued = new Map<string, Waiting[]>();
  let reading = false;
  const pump = () => {
    if (reading || queued.size === 0) return;
    let batch = queued;
    if (queued.size <= maxBatch) queued = new Map();
    else {
      batch = new Map([...queued].slice(0, maxBatch));
      for (const key of batch.keys()) queued.delete(key);
    }
    reading = true;
    onRead?.();
    let found: Promise<Map<string, V>>;
    try {
      found = read([...batch.keys()]);
    } catch (error) {
      // A read that throws instead of rejecting must not leave `reading` set for good.
      found = Promise.reject(error);
    }
    found.then((values) => {
      for (const [key, waiting] of batch) for (const w of waiting) w.resolve(values.get(key));
    }, (error) => {
      for (const waiting of batch.values()) for (const w of waiting) w.reject(error);
    }).finally(() => {
      reading = false;
      pump();
    });
  };
  return (key) =>
    new Promise<V | undefined>((resolve, reject) => {
      const waiting = queued.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else queued.set(key, [{ resolve, reject }]);
      pump();
    });
}
