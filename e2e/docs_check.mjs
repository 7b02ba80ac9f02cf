// The docs page in a real browser: Debian's Chromium, driven by playwright-core.
//
//   BASE_URL=http://127.0.0.1:3000 API_KEY=... node e2e/docs_check.mjs
//
// Swagger UI must render every operation of /openapi.json from the service's own files:
// no console error, no CSP violation, no failed request, nothing fetched from another
// origin; "Try it out" on GET /health must show 200. With API_KEY (the service runs with
// API_KEYS), the page is authorized with the key through its Authorize dialog, and "Try
// it out" on GET /customers must then send it and show 200. Exits 1 naming every problem.
//
// The page is opened as http://customer-api.test:<port>/docs, resolved by Chromium to
// BASE_URL's host: Swagger UI leaves some things out for localhost and 127.0.0.1 (the
// validator badge, an image from validator.swagger.io), and the check should see the
// page a deployed service serves.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const PAGE_HOST = "customer-api.test";
const TIMEOUT = 20_000;

const base = new URL(process.env.BASE_URL ?? "http://127.0.0.1:3000");
const apiKey = process.env.API_KEY ?? "";
const pageUrl = new URL(base);
pageUrl.hostname = PAGE_HOST;
const origin = pageUrl.origin;
const problems = [];

async function expectedOperations() {
  const response = await fetch(new URL("/openapi.json", base));
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
  const doc = await response.json();
  const methods = ["get", "put", "post", "delete", "patch"];
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    methods.filter((method) => method in item).map((method) => `${method.toUpperCase()} ${path}`));
}

async function check(page) {
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught error in the page: ${error.message}`));
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol !== "data:" && url.origin !== origin) {
      problems.push(`request to another origin: ${request.method()} ${request.url()}`);
    }
  });
  page.on("requestfailed", (request) =>
    problems.push(`failed request: ${request.method()} ${request.url()} (${request.failure()?.errorText})`));
  page.on("response", (response) => {
    if (response.status() >= 400) {
      problems.push(`${response.status()} for ${response.request().method()} ${response.url()}`);
    }
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations.push(
        `${event.effectiveDirective} blocked ${event.blockedURI || "(inline)"}` +
          (event.sourceFile ? ` at ${event.sourceFile}:${event.lineNumber}` : ""));
    });
  });

  const expected = await expectedOperations();
  const response = await page.goto(new URL("/docs", pageUrl).href, { waitUntil: "load" });
  if (response?.status() !== 200) problems.push(`GET /docs answered ${response?.status()}`);
  const csp = response?.headers()["content-security-policy"] ?? "";
  if (!csp.includes("default-src 'none'")) problems.push(`/docs has no strict CSP: "${csp}"`);

  // Swagger UI has rendered once the POST /customers operation block is there.
  const opblock = (method, path) =>
    page.locator(`.opblock.opblock-${method}`, {
      has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
    });
  await opblock("post", "/customers").waitFor({ timeout: TIMEOUT });
  const rendered = await page.$$eval(".opblock", (blocks) =>
    blocks.map((block) => {
      const method = block.querySelector(".opblock-summary-method")?.textContent ?? "";
      const path = block.querySelector(".opblock-summary-path")?.getAttribute("data-path") ?? "";
      return `${method.trim().toUpperCase()} ${path}`;
    }));
  for (const operation of expected) {
    if (!rendered.includes(operation)) problems.push(`operation not rendered: ${operation}`);
  }

  // Try it out: an operation through the UI, against the service itself; the status shown.
  async function tryItOut(method, path) {
    const block = opblock(method, path);
    await block.locator(".opblock-summary").click();
    await block.locator("button.try-out__btn").click();
    await block.locator("button.execute").click();
    const status = block.locator(".live-responses-table tbody .response-col_status").first();
    await status.waitFor({ timeout: TIMEOUT });
    return (await status.textContent())?.trim();
  }
  const shown = await tryItOut("get", "/health");
  if (shown !== "200") problems.push(`Try it out on GET /health showed ${shown}, not 200`);

  let customersShown = "(not tried: no API_KEY)";
  if (apiKey) {
    // Authorize: the X-API-Key scheme of the Authorize dialog, as a person would.
    await page.locator(".auth-wrapper button.authorize").click();
    const scheme = page.locator(".modal-ux .auth-container", { hasText: "X-API-Key" });
    await scheme.locator("input").fill(apiKey);
    await scheme.locator("button.authorize").click();
    await page.locator(".modal-ux button.close-modal").click();
    const sent = [];
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/customers") sent.push(request.headers()["x-api-key"]);
    });
    customersShown = await tryItOut("get", "/customers");
    if (customersShown !== "200") {
      problems.push(`Try it out on GET /customers, authorized, showed ${customersShown}, not 200`);
    }
    if (sent.length !== 1 || sent[0] !== apiKey) {
      problems.push(`GET /customers from the page did not carry the key once (${sent.length} requests)`);
    }
  }

  // Let late requests (images, fonts) land before reading the violations.
  await page.waitForLoadState("networkidle");
  const violations = await page.evaluate(() => window.__cspViolations);
  for (const violation of violations) problems.push(`CSP violation: ${violation}`);
  console.log(
    `docs page: ${rendered.length} of ${expected.length} operations rendered, ` +
      `Try it out on GET /health: ${shown}, on GET /customers: ${customersShown}`);
}

const profile = await mkdtemp(join(tmpdir(), "docs-check-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--host-resolver-rules=MAP ${PAGE_HOST} ${base.hostname}`,
      "--no-proxy-server",
    ],
    timeout: TIMEOUT,
  });
  context.setDefaultTimeout(TIMEOUT);
  await check(context.pages()[0] ?? (await context.newPage()));
} catch (error) {
  problems.push(`the check could not finish: ${error.message.split("\n")[0]}`);
} finally {
  await context?.close();
  await rm(profile, { recursive: true, force: true });
}

if (problems.length) {
  console.error(`docs page check FAILED (${pageUrl.origin}/docs):`);
  for (const problem of problems) console.error(`  - ${problem}`);
  process.exit(1);
}
console.log("docs page: no console error, no CSP violation, no failed request, nothing from another origin");
