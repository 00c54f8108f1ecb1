// Vite build of the test page; lists the modules of the output so the test can check them.
import { writeFileSync } from "node:fs";

export default {
  logLevel: "warn",
  build: { outDir: "web", emptyOutDir: true },
  plugins: [
    {
      name: "list-modules",
      generateBundle(_options, bundle) {
        const ids = [];
        for (const item of Object.values(bundle)) if (item.type === "chunk") ids.push(...item.moduleIds);
        writeFileSync("web-modules.json", JSON.stringify(ids));
      },
    },
  ],
};
