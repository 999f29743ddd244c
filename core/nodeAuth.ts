// Node tokens: a node's routes accept only its own token (Bearer, or X-API-Key as the original client sent).
import { findNodeAuth, findNodeIdByTokenHash } from "../db/nodeAuth.ts";
import type { CoreDeps } from "./deps.ts";
import { AppError, forbidden, notFound, unauthorized } from "./errors.ts";
import type { Principal } from "./principal.ts";
import { constantTimeEqual, keyedHash, SECRET_PREFIX, secretShaped } from "./secrets.ts";

/** The token from `Authorization: Bearer <t>` or `X-API-Key: <t>`, or undefined. */
export function presentedToken(authorization?: string | null, xApiKey?: string | null): string | undefined {
  const bearer = authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  return bearer ?? (xApiKey?.trim() || undefined);
}

/** Checks that `token` is the node token of `nodeId`. 401 unknown/missing, 403 another node's token,
 * 404 unknown node, 410 decommissioned. */
export async function authenticateNode(
  deps: Pick<CoreDeps, "db" | "settings">,
  nodeId: string,
  token: string | undefined,
): Promise<Extract<Principal, { kind: "node" }>> {
  if (!token) throw unauthorized("node token required (Authorization: Bearer <node token>)");
  // Refused before hashing: a 60 KB "token" costs nothing.
  if (!secretShaped(SECRET_PREFIX.nodeToken, token)) throw unauthorized("not a node token");
  const tokenHash = await keyedHash(deps.settings.SECRET_KEY, token);
  const node = await findNodeAuth(deps.db, nodeId);
  if (!node) throw notFound(`node ${nodeId}`);
  if (node.decommissionedAt) {
    throw new AppError(410, "node_decommissioned", `node ${node.name} is decommissioned`);
  }
  if (node.tokenHash && constantTimeEqual(node.tokenHash, tokenHash)) {
    return { kind: "node", nodeId: node.id, nodeName: node.name };
  }
  // Only on the failure path: tell another node's valid token (403) from an invalid one (401).
  if (await findNodeIdByTokenHash(deps.db, tokenHash)) throw forbidden("this token belongs to another node");
  throw unauthorized("invalid node token");
}
