// drizzle-kit reads this to generate db/migrations/ from db/schema.ts (`deno task db:generate`).
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "mysql",
  schema: "./db/schema.ts",
  out: "./db/migrations",
});
