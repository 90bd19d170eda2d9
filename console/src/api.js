// The API client: every call goes through the operations table generated
// from the OpenAPI document (api.gen.js), with the session's token.
import { operations } from "./api.gen.js";

const tokenKey = "dataguardian.token";

// APIError is a problem JSON answer (RFC 9457): status, title, detail and
// the field errors ({location, message}) of a 422.
export class APIError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || "HTTP " + status);
    this.status = status;
    this.problem = problem;
    this.fields = problem.errors || [];
  }
}

export const session = {
  token: () => sessionStorage.getItem(tokenKey),
  set: (t) => sessionStorage.setItem(tokenKey, t),
  clear: () => sessionStorage.removeItem(tokenKey),
  // me is the signed-in token (GET /api/tokens/me): name, permissions.
  me: null,
};

// url is an API path relative to where the console is served, so that a
// console mounted under a prefix calls the API under the same prefix.
export function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u;
}

// call runs the operation id with path parameters params, query and JSON
// body; it returns the decoded answer (null for 204) or throws APIError.
export async function call(id, { params = {}, query, body } = {}) {
  const op = operations[id];
  if (!op) throw new Error("unknown operation " + id);
  const [method, template] = op;
  const path = template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(params[k]));
  const headers = { Accept: "application/json" };
  const token = session.token();
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url(path, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

// holds reports whether the signed-in token holds permission perm (for a
// choice inside an operation, such as a restore's verification mode).
export function holds(perm) {
  return ((session.me && session.me.permissions) || []).includes(perm);
}

// can reports whether the signed-in token may run operation id: a control
// for an operation the token may not run is not shown at all.
export function can(id) {
  const op = operations[id];
  if (!op) return false;
  const perms = op[2];
  if (perms === null || perms.length === 0) return true;
  return perms.some(holds);
}
