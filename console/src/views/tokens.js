// API tokens: the list, a new token (its secret shown once), revoke. A
// token can only grant permissions it holds, so the form offers those.
import { h, replace } from "../dom.js";
import { call, can, holds, session, APIError } from "../api.js";
import { permissions } from "../api.gen.js";
import { when } from "../format.js";

export async function tokens() {
  const error = h("p", { class: "error", role: "alert" });
  const listHolder = h("div");
  // The list is drawn again after a change; the form and the new secret
  // stay as they are (the page holds a form: live updates leave it alone).
  const load = async () => {
    const list = (await call("list-api-tokens")) || [];
    const revoke = (t) => async (ev) => {
      ev.target.disabled = true;
      error.textContent = "";
      try {
        await call("delete-api-token", { params: { id: t.id } });
        await load();
      } catch (err) {
        ev.target.disabled = false;
        error.textContent = err.message;
      }
    };
    replace(listHolder, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Permissions"), h("th", {}, "Last used"),
        h("th", {}, "Expires"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
      h("tbody", {}, list.map((t) => h("tr", {},
        h("td", {}, t.name, t.id === session.me.id ? h("span", { class: "detail" }, " (this session)") : null),
        h("td", {}, (t.permissions || []).join(", ")),
        h("td", {}, when(t.last_used_at)), h("td", {}, t.expires_at ? when(t.expires_at) : "never"),
        h("td", {}, can("delete-api-token") && t.id !== session.me.id
          ? h("button", { type: "button", "aria-label": "Revoke " + t.name, onclick: revoke(t) }, "Revoke") : null))))));
  };
  await load();
  return h("section", { "aria-labelledby": "tk-title" },
    h("h1", { id: "tk-title" }, "API tokens"),
    can("create-api-token") ? newToken(load) : null,
    error, listHolder);
}

// newToken is the form of a new token; created() redraws the list.
function newToken(created) {
  const name = h("input", { id: "nt-name", required: true, maxlength: 200, autocomplete: "off" });
  const boxes = permissions.filter(holds).map((p) => h("input", { type: "checkbox", value: p, id: "perm-" + p }));
  const expires = h("input", { id: "nt-expires", type: "date" });
  const out = h("div", { role: "status" });
  return h("form", {
    class: "stacked",
    onsubmit: async (ev) => {
      ev.preventDefault();
      out.replaceChildren();
      const body = { name: name.value, permissions: boxes.filter((b) => b.checked).map((b) => b.value) };
      if (expires.value) body.expires_at = new Date(expires.value + "T23:59:59").toISOString();
      try {
        const t = await call("create-api-token", { body });
        out.append(h("p", { class: "warning" }, "Token ", h("strong", {}, t.name),
          " created. Copy its secret now: it is shown this once."), h("code", { class: "secret" }, t.secret));
        name.value = "";
        boxes.forEach((b) => { b.checked = false; });
        await created();
      } catch (err) {
        out.append(h("p", { class: "error" }, err instanceof APIError && err.fields.length
          ? err.fields.map((f) => f.message).join("; ") : err.message));
      }
    },
  },
    h("h2", {}, "New token"),
    h("div", { class: "field" }, h("label", { for: "nt-name" }, "Name"), name),
    h("fieldset", {}, h("legend", {}, "Permissions (those this session holds)"),
      boxes.map((b) => h("label", { class: "check" }, b, " " + b.value))),
    h("div", { class: "field" }, h("label", { for: "nt-expires" }, "Expires (optional)"), expires),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create token")),
    out);
}
