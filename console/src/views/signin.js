// Sign-in: an API token, checked with GET /api/tokens/me and kept in this
// tab's session only (sessionStorage: gone when the tab closes).
import { h } from "../dom.js";
import { call, session, APIError } from "../api.js";

export function signin(done) {
  const input = h("input", { id: "token", type: "password", name: "token", autocomplete: "off", required: true });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", {
    class: "signin",
    onsubmit: async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      session.set(input.value.trim());
      try {
        session.me = await call("get-current-api-token");
        done();
      } catch (err) {
        session.clear();
        error.textContent = err instanceof APIError && err.status === 401
          ? "This token is not valid (unknown, revoked or expired)."
          : "Sign-in failed: " + err.message;
      }
    },
  },
    h("h1", {}, "DataGuardian"),
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    error,
    h("p", { class: "hint" }, "Create tokens with ", h("code", {}, "dataguardian token create"),
      " or POST /api/tokens; the token stays in this tab only."),
  );
  return form;
}
