// Who is calling: resolved by the auth middleware, read by services for authorization and audit.
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = typeof ROLES[number];

export type Principal =
  | { kind: "user"; userId: number; username: string; role: Role; sessionIdHash?: string }
  | { kind: "api_key"; keyId: number; name: string; role: Role }
  | { kind: "node"; nodeId: string; nodeName: string }
  | { kind: "system"; name: string };

/** A node whose token was checked (core/nodeAuthCache.ts). */
export type NodePrincipal = Extract<Principal, { kind: "node" }>;

/** Who acts, and from where (for the audit log). Every service that changes something takes it second:
 * `service(deps, actor, input)`. */
export interface Actor<P extends Principal = Principal> {
  principal: P;
  address?: string | null;
}

/** An agent that is not yet known for sure: where it connects from and the node token it presented (if
 * any). Register and heartbeat take it in place of an Actor, because checking the token is part of their
 * work (the heartbeat checks it from memory, register against the locked node row). */
export interface AgentCaller {
  address: string | null;
  token: string | undefined;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** True when `role` is at least `needed` (admin > operator > viewer). */
export function roleAtLeast(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** The actor fields of an audit entry for a principal. */
export function actorOf(
  principal: Principal,
): { actorType: string; actorId: string | null; actorName: string } {
  switch (principal.kind) {
    case "user":
      return { actorType: "user", actorId: String(principal.userId), actorName: principal.username };
    case "api_key":
      return { actorType: "api_key", actorId: String(principal.keyId), actorName: `key:${principal.name}` };
    case "node":
      return { actorType: "node", actorId: principal.nodeId, actorName: `node:${principal.nodeName}` };
    case "system":
      return { actorType: "system", actorId: null, actorName: principal.name };
  }
}
