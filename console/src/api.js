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

// send makes the request and returns the decoded answer (null for 204)
// and the response, or throws APIError.
async function send(method, u, body) {
  const headers = { Accept: "application/json" };
  const token = session.token();
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(u, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return { data: null, res };
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new APIError(res.status, data);
  return { data, res };
}

function target(id, { params = {}, query } = {}) {
  const op = operations[id];
  if (!op) throw new Error("unknown operation " + id);
  const [method, template] = op;
  return [method, url(template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(params[k])), query)];
}

// call runs the operation id with path parameters params, query and JSON
// body; it returns the decoded answer (null for 204) or throws APIError.
export async function call(id, opts = {}) {
  const [method, u] = target(id, opts);
  return (await send(method, u, opts.body)).data;
}

// pageOf is a list answer: its items and the URL of the next page (the
// Link header's rel="next"; null on the last page).
function pageOf({ data, res }) {
  const m = /<([^>]*)>;\s*rel="next"/.exec(res.headers.get("Link") || "");
  return { items: data || [], next: m ? new URL(m[1], location.href) : null };
}

// page runs the list operation id (opts as for call) and returns its
// first page: { items, next }.
export async function page(id, opts = {}) {
  const [method, u] = target(id, opts);
  return pageOf(await send(method, u));
}

// nextPage reads the page at next (the next of page or nextPage).
export async function nextPage(next) {
  return pageOf(await send("GET", next));
}

// all runs the list operation id and returns every item, following the
// pages 1,000 items at a time (for choices such as a job's datasource).
export async function all(id, opts = {}) {
  let p = await page(id, { ...opts, query: { ...(opts.query || {}), limit: 1000 } });
  const items = [...p.items];
  while (p.next) {
    p = await nextPage(p.next);
    items.push(...p.items);
  }
  return items;
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
