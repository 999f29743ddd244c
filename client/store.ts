// File access and host facts the client needs, behind a small interface so the client core uses only
// fetch. The default implementation loads node:fs/promises and node:os on first use, which both Node and
// Deno provide; pass your own `store` to run elsewhere.

/** Where the client reads and writes its files. */
export interface ClientStore {
  /** The file's text, or null when it does not exist. */
  readText(path: string): Promise<string | null>;
  /** Replaces `path` atomically: temp file in the same directory, fsync, rename. With `backupPath`, the
   * previous file (if any) is copied there first. `mode` applies to the new file (e.g. 0o600). */
  writeAtomic(path: string, text: string, options?: { mode?: number; backupPath?: string }): Promise<void>;
}

/** Host facts: the machine's name and the environment (for CENTRAL_* variables). */
export interface ClientRuntime {
  hostname(): Promise<string>;
  env(name: string): Promise<string | undefined>;
}

type FsPromises = typeof import("node:fs/promises");

let fsModule: Promise<FsPromises> | undefined;
const loadFs = () => (fsModule ??= import("node:fs/promises"));

function dirname(path: string): string {
  const index = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return index <= 0 ? (index === 0 ? "/" : ".") : path.slice(0, index);
}

function basename(path: string): string {
  return path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
}

/** The default store over node:fs/promises (Node 20+ and Deno). */
export const fileSystemStore: ClientStore = {
  async readText(path) {
    const fs = await loadFs();
    try {
      return await fs.readFile(path, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return null;
      throw error;
    }
  },

  async writeAtomic(path, text, options = {}) {
    const fs = await loadFs();
    const directory = dirname(path);
    const random = Math.random().toString(36).slice(2, 10);
    const temp = `${directory}/.${basename(path)}.${random}.tmp`;
    const handle = await fs.open(temp, "wx", options.mode ?? 0o644);
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } catch (error) {
      await handle.close();
      await fs.rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    try {
      if (options.mode !== undefined) await fs.chmod(temp, options.mode); // umask may have narrowed it
      if (options.backupPath) {
        try {
          await fs.copyFile(path, options.backupPath);
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOENT") throw error;
        }
      }
      await fs.rename(temp, path);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
    // Make the rename itself durable; not every platform lets a directory be opened for this.
    try {
      const dir = await fs.open(directory, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch { /* best effort */ }
  },
};

/** The default runtime over node:os and node:process (Node 20+ and Deno). */
export const defaultRuntime: ClientRuntime = {
  async hostname() {
    try {
      const os = await import("node:os");
      return os.hostname();
    } catch {
      return "unknown-host";
    }
  },
  async env(name) {
    try {
      const process = await import("node:process");
      return process.env[name];
    } catch {
      return undefined; // no permission to read the environment
    }
  },
};
