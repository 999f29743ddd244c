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

export function assetVersion(name: string): string {
  let version = versions.get(name);
  if (!version) {
    const asset = assets[name];
    if (!asset) throw new Error(`no static asset ${name}`);
    version = contentVersion(asset.body);
    versions.set(name, version);
  }
  return version;
}

export function assetUrl(name: string): string {
  return `/static/${name}?v=${assetVersion(name)}`;
}
