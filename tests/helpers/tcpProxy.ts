// A loopback TCP proxy in front of the database (or the service) that a test can cut, stall and
// restore, to play outages:
//   - cut(): connections are dropped and refused (a crash: the client learns at once);
//   - stall(): everything stays open but no byte is forwarded, and new connections are accepted but
//     never answered (packets black-holed: the client learns nothing until its own timeouts fire);
//   - restore(): accepts and forwards again; bytes held during a stall are delivered then, as a
//     network's retransmits would be.
export interface TcpProxy {
  port: number;
  /** Drops every connection and stops accepting (the database "goes away"). */
  cut(): void;
  /** Keeps connections open but forwards nothing (the network black-holes packets). */
  stall(): void;
  /** Accepts (after a cut) and forwards (after a stall) again, on the same port. */
  restore(): void;
  close(): Promise<void>;
}

export function startTcpProxy(targetHost: string, targetPort: number): TcpProxy {
  let listener: Deno.Listener | undefined;
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let port = 0;
  // Resolved while bytes flow; a pending promise while stalled.
  let flowing: Promise<void> = Promise.resolve();
  let resume: (() => void) | undefined;

  const closeQuietly = (conn: Deno.Conn | undefined) => {
    if (!conn) return;
    open.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  const writeAll = async (to: Deno.Conn, bytes: Uint8Array) => {
    for (let written = 0; written < bytes.length;) written += await to.write(bytes.subarray(written));
  };

  /** Copies from -> to until either side closes; waits at the gate while stalled. */
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await from.read(buffer);
        if (read === null) break;
        await flowing;
        await writeAll(to, buffer.subarray(0, read));
      }
    } catch {
      // a cut closes both ends mid-copy
    }
  };

  const accept = async (server: Deno.Listener) => {
    for await (const client of server) {
      open.add(client);
      const task = (async () => {
        let upstream: Deno.Conn | undefined;
        try {
          await flowing; // a stalled network answers no new connection either
          if (!open.has(client)) return; // cut or closed while waiting
          upstream = await Deno.connect({ hostname: targetHost, port: targetPort });
          open.add(upstream);
          // When either direction ends, the connection is over for both.
          await Promise.race([pipe(client, upstream), pipe(upstream, client)]);
        } catch {
          // upstream refused
        } finally {
          closeQuietly(client);
          closeQuietly(upstream);
        }
      })();
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  };

  let acceptLoop: Promise<void> = Promise.resolve();
  const listen = () => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    acceptLoop = accept(listener).catch(() => {});
  };
  const flow = () => {
    resume?.();
    resume = undefined;
    flowing = Promise.resolve();
  };
  const stop = () => {
    listener?.close();
    listener = undefined;
    for (const conn of [...open]) closeQuietly(conn);
    flow(); // let waiting copies see their connections closed and end
  };
  listen();
  return {
    get port() {
      return port;
    },
    cut: stop,
    stall: () => {
      if (resume) return;
      flowing = new Promise((resolve) => (resume = resolve));
    },
    restore: () => {
      flow();
      if (!listener) listen();
    },
    close: async () => {
      stop();
      await acceptLoop;
      await Promise.all([...tasks]);
    },
  };
}
