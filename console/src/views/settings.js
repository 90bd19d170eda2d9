// Notification channels (webhook, e-mail, WhatsApp) and templates. A
// stored secret is never shown: its field stays empty and sending it
// empty keeps it (the API's "********"), unless the destination changes,
// which the API refuses without the secret again (a field error here).
import { h, replace } from "../dom.js";
import { call, can, APIError } from "../api.js";
import { when } from "../format.js";

const redacted = "********";

// fields of each channel: text, number, url, list (comma separated),
// secret (write-only), headers (one "Name: value" a line).
const channels = {
  webhook: { title: "Webhook", fields: { url: "url", secret: "secret", headers: "headers", min_severity: "text", types: "list", timeout_seconds: "number", max_attempts: "number" } },
  smtp: { title: "E-mail (SMTP)", fields: { host: "text", port: "number", username: "text", password: "secret", from: "text", to: "list", tls: "text", min_severity: "text", types: "list", timeout_seconds: "number" } },
  whatsapp: { title: "WhatsApp (Evolution API)", fields: { base_url: "url", instance: "text", api_key: "secret", numbers: "list", min_severity: "text", types: "list", timeout_seconds: "number" } },
};

function input(ch, name, kind, value) {
  const id = `cs-${ch}-${name}`;
  const attrs = { id, name: id, autocomplete: "off" };
  let el;
  if (kind === "headers") {
    el = h("textarea", { ...attrs, rows: 3 });
    el.value = Object.entries(value || {}).map(([k, v]) => k + ": " + v).join("\n");
  } else if (kind === "secret") {
    el = h("input", { ...attrs, type: "password", placeholder: value ? "unchanged" : "" });
  } else {
    el = h("input", { ...attrs, type: kind === "number" ? "number" : kind === "url" ? "url" : "text" });
    el.value = kind === "list" ? (value || []).join(", ") : value ?? "";
  }
  return el;
}

function read(kind, el, stored) {
  const v = el.value.trim();
  switch (kind) {
    case "number": return v === "" ? undefined : Number(v);
    case "list": return v === "" ? [] : v.split(",").map((x) => x.trim()).filter(Boolean);
    case "secret": return v !== "" ? v : stored ? redacted : undefined;
    case "headers": return Object.fromEntries(v.split("\n").filter((l) => l.includes(":"))
      .map((l) => [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()]));
    default: return v === "" ? undefined : v;
  }
}

export async function settings() {
  const [current, templates] = await Promise.all([call("get-notification-settings"), call("list-notification-templates")]);
  const editable = can("put-notification-settings");
  const errors = {};
  const inputs = {};
  const general = h("p", { class: "error", role: "alert" });
  const saved = h("p", { role: "status" });
  const sets = Object.entries(channels).map(([ch, spec]) => {
    const cur = current[ch] || {};
    const enabled = h("input", { type: "checkbox", id: `cs-${ch}-enabled`, checked: !!cur.enabled, disabled: !editable });
    inputs[ch] = { enabled };
    return h("fieldset", { class: "channel" }, h("legend", {}, spec.title),
      h("label", { class: "check" }, enabled, " enabled"),
      Object.entries(spec.fields).map(([name, kind]) => {
        const el = input(ch, name, kind, cur[name]);
        el.disabled = !editable;
        inputs[ch][name] = el;
        errors[`${ch}.${name}`] = h("span", { class: "error field-error" });
        return h("div", { class: "field" }, h("label", { for: el.id }, name.replace(/_/g, " ")), el, errors[`${ch}.${name}`]);
      }));
  });
  const form = h("form", {
    class: "stacked wide",
    onsubmit: async (ev) => {
      ev.preventDefault();
      general.textContent = saved.textContent = "";
      Object.values(errors).forEach((e) => { e.textContent = ""; });
      const body = {};
      for (const [ch, spec] of Object.entries(channels)) {
        const cur = current[ch] || {};
        const c = { enabled: inputs[ch].enabled.checked };
        let filled = false;
        for (const [name, kind] of Object.entries(spec.fields)) {
          const v = read(kind, inputs[ch][name], cur[name]);
          if (v === undefined || (Array.isArray(v) && !v.length) || (kind === "headers" && !Object.keys(v).length)) continue;
          c[name] = v;
          filled = true;
        }
        if (c.enabled || filled) body[ch] = c; // a channel left empty and off is not configured
      }
      try {
        await call("put-notification-settings", { body });
        saved.textContent = "Saved.";
      } catch (err) {
        if (!(err instanceof APIError)) throw err;
        const rest = [];
        for (const fe of err.fields) {
          const slot = errors[(fe.location || "").replace(/^body\./, "")];
          if (slot) slot.textContent = fe.message; else rest.push(fe.message);
        }
        general.textContent = [err.message, ...rest].join(" ");
      }
    },
  }, sets, general, saved, editable ? h("div", { class: "actions" }, h("button", { type: "submit" }, "Save channels")) : null);
  return h("section", { "aria-labelledby": "st-title" },
    h("h1", { id: "st-title" }, "Notification settings"), form,
    h("h2", {}, "Templates"), templateList(templates || []));
}

// templateList shows each (type, channel)'s active template with its
// older versions; editing saves a new version.
function templateList(all) {
  const groups = {};
  for (const t of all) (groups[t.type + " · " + t.channel] ||= []).push(t);
  const entries = Object.entries(groups).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("p", {}, "No template: the built-in texts are used.");
  return h("div", {}, entries.map(([key, versions]) => {
    versions.sort((a, b) => b.version - a.version);
    const active = versions.find((v) => v.active) || versions[0];
    const subject = h("input", { value: active.subject || "", "aria-label": key + " subject" });
    const body = h("textarea", { rows: 4, "aria-label": key + " body" });
    body.value = active.body;
    const out = h("p", { role: "status" });
    const edit = can("create-notification-template-version") ? h("form", {
      class: "stacked",
      onsubmit: async (ev) => {
        ev.preventDefault();
        out.textContent = "";
        try {
          const t = await call("create-notification-template-version", { params: { id: active.id }, body: { subject: subject.value, body: body.value } });
          out.textContent = "Saved as version " + t.version + ".";
        } catch (err) {
          out.textContent = err instanceof APIError && err.fields.length ? err.fields.map((f) => f.message).join("; ") : err.message;
          out.className = "error";
        }
      },
    }, subject, body, h("div", { class: "actions" }, h("button", { type: "submit" }, "Save as a new version")), out) : null;
    return h("article", { class: "template" },
      h("h3", {}, key + " — version " + active.version),
      edit || h("pre", { class: "log" }, active.body),
      versions.length > 1 ? h("details", {}, h("summary", {}, "Earlier versions"),
        versions.filter((v) => v !== active).map((v) => h("div", {}, h("p", { class: "detail" }, "version " + v.version + " · " + when(v.created_at)),
          h("pre", { class: "log" }, v.body)))) : null);
  }));
}
