// A new datasource, or changes to one: the fields its type needs, the
// API's field errors shown next to the fields they name (422 problem
// JSON, body.<field>). The stored password is never shown: left empty on
// an edit it is kept (unless the connection moves, which the API refuses
// without it).
import { h } from "../dom.js";
import { call, APIError } from "../api.js";

const types = ["postgres", "mysql", "mariadb", "sqlite", "files"];
const networkFields = ["host", "port", "database", "username", "password"];

function field(name, label, input, hint) {
  input.id = "df-" + name;
  input.name = name;
  const error = h("span", { class: "error field-error", id: "df-" + name + "-error" });
  input.setAttribute("aria-describedby", error.id);
  return { name, input, error, row: h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("span", { class: "hint" }, hint) : null, error) };
}

export function datasourceForm(existing) {
  const type = h("select", {}, types.map((t) => h("option", { value: t }, t)));
  const fields = [
    field("name", "Name", h("input", { required: true, autocomplete: "off" })),
    field("type", "Type", type),
    field("host", "Host", h("input", { autocomplete: "off" })),
    field("port", "Port", h("input", { type: "number", min: 1, max: 65535 })),
    field("database", "Database", h("input", { autocomplete: "off" })),
    field("username", "User", h("input", { autocomplete: "off" })),
    field("password", "Password", h("input", { type: "password", autocomplete: "new-password" }), "write-only: never shown again"),
    field("path", "Path", h("input", { autocomplete: "off" }), "absolute, on the server, under its allowed folders"),
  ];
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
  if (existing) {
    for (const f of fields) {
      if (f.name !== "password" && existing[f.name] !== undefined && existing[f.name] !== null) f.input.value = existing[f.name];
    }
    type.disabled = true; // a datasource keeps its type
  }
  const general = h("p", { class: "error", role: "alert" });
  const showFields = () => {
    const network = !["sqlite", "files"].includes(type.value);
    for (const f of fields) {
      if (networkFields.includes(f.name)) f.row.hidden = !network;
      if (f.name === "path") f.row.hidden = network;
    }
  };
  type.addEventListener("change", showFields);
  showFields();
  const form = h("form", {
    class: "stacked",
    onsubmit: async (ev) => {
      ev.preventDefault();
      general.textContent = "";
      fields.forEach((f) => { f.error.textContent = ""; f.input.removeAttribute("aria-invalid"); });
      const body = {};
      for (const f of fields) {
        if (f.row.hidden || f.input.value === "" || (existing && f.name === "type")) continue;
        body[f.name] = f.name === "port" ? Number(f.input.value) : f.input.value;
      }
      try {
        if (existing) {
          await call("update-datasource", { params: { id: existing.id }, body: { ...body, type: existing.type } });
          location.hash = "#/datasources/" + encodeURIComponent(existing.id);
        } else {
          await call("create-datasource", { body });
          location.hash = "#/datasources";
        }
      } catch (err) {
        if (!(err instanceof APIError)) throw err;
        const unplaced = [];
        for (const fe of err.fields) {
          const f = byName[(fe.location || "").replace(/^body\./, "").split(".")[0]];
          if (f) { f.error.textContent = fe.message; f.input.setAttribute("aria-invalid", "true"); } else unplaced.push(fe.message);
        }
        general.textContent = err.fields.length && !unplaced.length ? "Check the fields marked above." : [err.message, ...unplaced].join(" ");
      }
    },
  }, fields.map((f) => f.row), general,
    h("div", { class: "actions" }, h("a", { href: existing ? "#/datasources/" + encodeURIComponent(existing.id) : "#/datasources" }, "Cancel"),
      h("button", { type: "submit" }, existing ? "Save" : "Create")));
  return h("section", { "aria-labelledby": "dn-title" },
    h("h1", { id: "dn-title" }, existing ? "Edit " + existing.name : "New datasource"), form);
}
