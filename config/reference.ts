import { BYO_CREDENTIAL_ID_ENV, BYO_CREDENTIAL_SECRET_ENV, CONFIG_FILE_ENV, FIELDS, envNameFor } from './fields';

/**
 * The configuration reference table of docs/infra.md, generated from the field table so the two cannot drift
 * (a test compares them). Print it with `npx tsx config/reference.ts`.
 */
export function configReferenceTable(): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = FIELDS.map((f) => {
    const dflt = f.default === undefined ? '—' : `\`${String(f.default)}\``;
    return `| \`${f.path}\` | \`${envNameFor(f.path)}\` | ${dflt} | ${cell(f.meaning)} |`;
  });
  const envOnly = [
    `| — | \`${BYO_CREDENTIAL_ID_ENV}\` | — | Bring your own application credential: its id. Environment only. |`,
    `| — | \`${BYO_CREDENTIAL_SECRET_ENV}\` | — | Its secret. Environment only; never written to any file this project produces. |`,
    `| — | \`${CONFIG_FILE_ENV}\` | \`persist.config.yaml\` | Read another configuration file. |`,
  ];
  return ['| Field | Environment variable | Default | Meaning |', '|---|---|---|---|', ...rows, ...envOnly].join('\n');
}

if (require.main === module) process.stdout.write(`${configReferenceTable()}\n`);
