// A client as a TypeScript developer makes one from the served document: types from
// openapi-typescript with its default settings, requests through openapi-fetch. e2e/run.sh
// puts the generated `api.d.ts` beside this file, compiles both under `tsc --strict`, and
// runs the result against a running service (BASE_URL).
//
// It type-checks only while a patch of the name alone is a valid CustomerPatch (a
// `default` on `phone` or `businessId` makes openapi-typescript require them), and it
// passes only while that patch leaves the phone as it was.
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

// Node's own; declared here so that the check needs no @types/node.
declare const process: { env: Record<string, string | undefined>; exitCode?: number };

type CustomerCreate = components["schemas"]["CustomerCreate"];
type CustomerPatch = components["schemas"]["CustomerPatch"];

const PHONE = "+358 40 123 4567";
const rename: CustomerPatch = { name: "Maija M." };
// A create with only the required fields type-checks too.
const minimal: CustomerCreate = { name: "Maija", email: `maija.${Date.now()}@example.com` };

function check(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`typescript client: ${what}`);
  }
}

async function main(): Promise<void> {
  const client = createClient<paths>({ baseUrl: process.env.BASE_URL });
  const created = await client.POST("/customers", { body: { ...minimal, phone: PHONE } });
  check(created.response.status === 201 && created.data !== undefined, "create answered 201");
  const customerId = created.data!.id;
  const path = { params: { path: { customerId } } };

  const patched = await client.PATCH("/customers/{customerId}", { ...path, body: rename });
  check(patched.response.status === 200, `patch answered ${patched.response.status}`);
  check(patched.data?.name === "Maija M.", "the patch changed the name");

  const fetched = await client.GET("/customers/{customerId}", path);
  check(fetched.data?.phone === PHONE, `the phone is kept (now ${fetched.data?.phone})`);
  check(fetched.data?.name === "Maija M.", "the name is the patched one");
  await client.DELETE("/customers/{customerId}", path);
  console.log("typescript client: a patch of the name alone kept the phone");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
