// Writes the static (serverless) click redirect page: `<out>/daily/index.html`.
//   SWC_NODE_PROJECT=tsconfig.base.json node -r @swc-node/register apps/api/src/daily/write-static-page.ts \
//     --out dist/static --base https://site.example \
//     [--allow /updates/ --allow /projects/] [--campaign Daily_Notification] [--invalid error-page|redirect-root]
// The page checks same origin, the allowlist and merges UTM, but cannot verify signatures: prefer GET /daily/.
import { parseArgs } from 'node:util';
import { writeStaticRedirectPage } from '@once/tracking';

const USAGE =
  'usage: write-static-page --out <dir> --base <https://site> [--allow <path-prefix>]... [--tracking-path /daily/]\n' +
  '       [--utm-source email] [--utm-medium email] [--campaign Daily_Notification] [--invalid error-page|redirect-root]';

/** Parses the command line and writes the page; resolves with the written file's path. */
export async function writeStaticPage(argv: string[]): Promise<string> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      out: { type: 'string' },
      base: { type: 'string' },
      allow: { type: 'string', multiple: true },
      'tracking-path': { type: 'string', default: '/daily/' },
      'utm-source': { type: 'string', default: 'email' },
      'utm-medium': { type: 'string', default: 'email' },
      campaign: { type: 'string', default: 'Daily_Notification' },
      invalid: { type: 'string', default: 'error-page' },
    },
  });
  if (!values.out || !values.base) throw new Error(`--out and --base are required\n${USAGE}`);
  if (values.invalid !== 'error-page' && values.invalid !== 'redirect-root') {
    throw new Error(`--invalid must be error-page or redirect-root\n${USAGE}`);
  }
  return writeStaticRedirectPage(values.out, {
    baseUrl: values.base,
    trackingPath: values['tracking-path'],
    pathAllowlist: values.allow,
    defaultUtm: { source: values['utm-source'], medium: values['utm-medium'], campaign: values.campaign },
    invalidLinkBehaviour: values.invalid,
  });
}

if (require.main === module) {
  writeStaticPage(process.argv.slice(2)).then(
    (file) => process.stdout.write(`wrote ${file}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
