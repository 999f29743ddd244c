// Cache-busted URLs of the console's static files: /static/<name>?v=<content hash>. A request carrying
// the current hash may be cached for a year (routes/system.ts); a new build changes the hash.
import { assets } from "../../static/assets.ts";

const versions = new Map<string, string>();

/** FNV-1a over the text: cheap, synchronous, and enough to tell builds apart. */
function contentVersion(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

/** The content hash of the static file `name`; `body` for one that is not among the console's files
 * (the docs' bundles, loaded on first use). */
export function assetVersion(name: string, body?: string): string {
  let version = versions.get(name);
  if (!version) {
    const text = body ?? assets[name]?.body;
    if (text === undefined) throw new Error(`no static asset ${name}`);
    version = contentVersion(text);
    versions.set(name, version);
  }
  return version;
}

export function assetUrl(name: string): string {
  return `/static/${name}?v=${assetVersion(name)}`;
}
