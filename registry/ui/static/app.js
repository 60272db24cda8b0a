// The console shell: hash routing, the login page, the header; each page lives in pages/*.js.

import { ApiError, forget, may, token, whoami } from "./api.js";
import { emptyState, errorBox, h, labelled, plain } from "./dom.js";
import { auditPage } from "./pages/audit.js";
import { branchesPage } from "./pages/branches.js";
import { datasetsPage } from "./pages/datasets.js";
import { diffPage } from "./pages/diff.js";
import { gatePage } from "./pages/gate.js";
import { historyPage } from "./pages/history.js";
import { lineagePage } from "./pages/lineage.js";
import { samplePage } from "./pages/sample.js";

const ROUTES = [
  [/^\/datasets$/, datasetsPage],
  [/^\/datasets\/([^/]+)$/, historyPage],
  [/^\/diff$/, diffPage],
  [/^\/sample\/([^/]+)\/(.+)$/, samplePage],
  [/^\/gate\/(.+)$/, gatePage],
  [/^\/audit$/, auditPage],
  [/^\/lineage\/(.+)$/, lineagePage],
  [/^\/branches\/([^/]+)$/, branchesPage],
];

const main = document.getElementById("main");
let loginMessage = null;

function parseHash() {
  const text = location.hash.replace(/^#/, "") || "/datasets";
  const [path, query = ""] = text.split("?", 2);
  return { path, query: new URLSearchParams(query) };
}

function setView(...nodes) {
  const view = h("div", { class: "view" }, ...nodes);
  main.replaceChildren(view);
  return view;
}

function header(who) {
  const nav = document.getElementById("nav");
  const session = document.getElementById("session");
  if (!who) {
    nav.replaceChildren();
    session.replaceChildren();
    return;
  }
  const links = [h("a", { href: "#/datasets" }, "Datasets")];
  if (may("audit")) links.push(h("a", { href: "#/audit" }, "Audit trail"));
  nav.replaceChildren(...links);
  session.replaceChildren(
    h("span", { class: "who" }, `${who.name} (${who.role})`),
    h("button", { type: "button", id: "logout", onclick: logout }, "Log out"));
}

function logout() {
  forget();
  loginMessage = null;
  location.hash = "#/login";
}

function loginPage() {
  header(null);
  document.title = "Sign in · Dataset registry";
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true,
    spellcheck: "false", size: 48 });
  const form = h("form", { class: "login", onsubmit: async (event) => {
    event.preventDefault();
    forget();
    token.set(input.value.trim());
    loginMessage = null;
    try {
      await whoami();
    } catch (err) {
      forget();
      loginMessage = err instanceof ApiError && err.status === 401
        ? `The registry did not accept this token: ${err.message}` : `Cannot sign in: ${err.message}`;
      render();
      return;
    }
    // Open the page that was asked for (a bookmark), or the datasets.
    const target = location.hash && location.hash !== "#/login" ? location.hash : "#/datasets";
    if (location.hash === target) render();
    else location.hash = target;
  } },
  labelled("token", "API token", input),
  h("button", { type: "submit" }, "Sign in"));
  const view = setView(
    h("h1", { tabindex: "-1" }, "Sign in"),
    h("p", {}, "Paste the API token your registry's administrator gave you. It is kept in this browser tab only ",
      "and forgotten when the tab closes or you log out."),
    form);
  if (loginMessage) view.append(errorBox(loginMessage));
  input.focus();
}

async function render() {
  const { path, query } = parseHash();
  if (!token.get() || path === "/login") {
    loginPage();
    return;
  }
  let who;
  try {
    who = await whoami();
  } catch (err) {
    forget();
    loginMessage = err instanceof ApiError && err.status === 401
      ? `The registry did not accept this token: ${err.message}` : `Cannot sign in: ${err.message}`;
    loginPage();
    return;
  }
  header(who);
  const view = setView(h("p", { class: "muted", role: "status" }, "Loading…"));
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  if (!route) {
    view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/datasets" },
      "Back to the datasets")));
    return;
  }
  const args = path.match(route[0]).slice(1).map(decodeURIComponent);
  try {
    await route[1](view, args, query);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forget();
      loginMessage = `Signed out: ${err.message}`;
      loginPage();
      return;
    }
    const heading = [...view.children].filter((el) => el.tagName === "H1");
    // Something that does not exist (yet) is a state to describe, not an error to shout.
    view.replaceChildren(...heading, err instanceof ApiError && err.status === 404
      ? emptyState(plain(err.message)) : errorBox(err));
  }
  if (main.contains(view)) {
    performance.mark("console:rendered");  // the bench reads this: the page's content is drawn
    const heading = view.querySelector("h1");
    document.title = `${heading ? heading.textContent : "Console"} · Dataset registry`;
    if (heading && document.activeElement === document.body) heading.setAttribute("tabindex", "-1");
  }
}

window.addEventListener("hashchange", () => {
  render().then(() => {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: false });
    }
  });
});
render();
