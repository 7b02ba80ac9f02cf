// The docs page in a real browser (Debian's Chromium through playwright-core): Swagger UI
// renders every operation from the service's own assets, with no CSP violation, no console
// error, no failed request and nothing fetched from another origin. "Try it out" on
// GET /health answers 200.
import { chromium } from "playwright-core";

const base = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const origin = new URL(base).origin;
const problems = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) =>
    problems.push(`failed request: ${request.url()} (${request.failure()?.errorText})`));
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol.startsWith("http") && url.origin !== origin) {
      problems.push(`request to another origin: ${request.url()}`);
    }
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });

  const response = await page.goto(`${base}/docs`, { waitUntil: "networkidle" });
  if (response?.status() !== 200) problems.push(`/docs answered ${response?.status()}`);
  const csp = response?.headers()["content-security-policy"] ?? "";
  if (!csp.includes("default-src")) problems.push(`/docs has no CSP: ${csp}`);

  await page.waitForSelector(".opblock", { timeout: 15000 });
  const operations = await page.$$eval(".opblock-summary-path", (nodes) =>
    nodes.map((node) => node.getAttribute("data-path") ?? node.textContent));
  for (const path of ["/customers", "/customers/{customerId}", "/businesses/{businessId}", "/health"]) {
    if (!operations.some((text) => text?.replace(/\u200b/g, "").includes(path))) {
      problems.push(`operation missing from the page: ${path}`);
    }
  }

  // Try it out: GET /health through the UI.
  const health = page.locator("#operations-default-health, .opblock-get:has(.opblock-summary-path[data-path='/health'])").first();
  await health.locator(".opblock-summary").click();
  await health.locator("button.try-out__btn").click();
  await health.locator("button.execute").click();
  const code = await health.locator(".live-responses-table tbody .response-col_status").first().textContent({ timeout: 10000 });
  if (code?.trim() !== "200") problems.push(`Try it out on /health showed ${code}`);

  const violations = await page.evaluate(() => window.__cspViolations);
  for (const violation of violations) problems.push(`CSP violation: ${violation}`);
  console.log(`docs page: ${operations.length} operations rendered, Try it out on /health: ${code?.trim()}`);
} finally {
  await browser.close();  // playwright's launch uses a fresh, temporary profile
}

if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("docs page: no CSP violation, no console error, no request elsewhere");
